"""pipeline1.py: separate strings from a PCollection (in-memory Create + FlatMap(str.split)).

python pipeline1.py --runner FnApiRunner
python pipeline1.py --runner PortableRunner --job_endpoint localhost:8099   # a cloudlet job
"""

import sys

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions


def run(argv=None):
    # Name the runner: Beam's default may try a Prism download, which fails offline.
    args = list(sys.argv[1:] if argv is None else argv) or ["--runner", "FnApiRunner"]
    with beam.Pipeline(options=PipelineOptions(args)) as pipeline:
        (
            pipeline
            | "Subjects" >> beam.Create(["English Maths Science French Arts"])
            | "Split subjects" >> beam.FlatMap(str.split)
            | beam.Map(print)
        )


if __name__ == "__main__":
    run()
