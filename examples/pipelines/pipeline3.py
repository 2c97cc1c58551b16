"""pipeline3.py: read a text file, split it into words, write one file (shard_name_template='').

python pipeline3.py --runner FnApiRunner       # reads sample1.txt, writes subjects.txt
"""

import sys

import apache_beam as beam
from apache_beam.io import ReadFromText, WriteToText
from apache_beam.options.pipeline_options import PipelineOptions


def run(argv=None):
    args = list(sys.argv[1:] if argv is None else argv) or ["--runner", "FnApiRunner"]
    with beam.Pipeline(options=PipelineOptions(args)) as pipeline:
        lines = pipeline | ReadFromText("sample1.txt")
        subjects = lines | "Subjects" >> beam.FlatMap(str.split)
        subjects | WriteToText(
            file_path_prefix="subjects", file_name_suffix=".txt", shard_name_template=""
        )


if __name__ == "__main__":
    run()
