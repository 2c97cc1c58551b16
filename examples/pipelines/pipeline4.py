"""pipeline4.py: arguments from the command line and a ParDo(DoFn) that parses words.

    python pipeline4.py --input sample1.txt --output myoutput --extension .txt
    python pipeline4.py --input gs://BUCKET/sample1.txt --output gs://BUCKET/out \\
        --runner PortableRunner --job_endpoint localhost:8099     # as a cloudlet Dataflow job
"""

import argparse
import re

import apache_beam as beam
from apache_beam.io import ReadFromText, WriteToText
from apache_beam.options.pipeline_options import PipelineOptions


class WordParsingDoFn(beam.DoFn):
    def process(self, element):
        return re.findall(r"[\w\']+", element, re.UNICODE)


def run(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", dest="input", default="sample1.txt",
                        help="Input file to process.")  # fmt: skip
    parser.add_argument("--output", dest="output", default="subjects",
                        help="Output file to write results to.")  # fmt: skip
    parser.add_argument("--extension", dest="ext", default=".txt",
                        help="Output file extension to use.")  # fmt: skip
    known_args, pipeline_args = parser.parse_known_args(argv)
    if not any(arg.startswith("--runner") for arg in pipeline_args):
        # The chapter sets DirectRunner here; name FnApiRunner, which never needs a download.
        pipeline_args.append("--runner=FnApiRunner")
    pipeline_args.append("--job_name=demo-local-job")
    with beam.Pipeline(options=PipelineOptions(pipeline_args)) as pipeline:
        lines = pipeline | ReadFromText(known_args.input)
        subjects = lines | "Subjects" >> beam.ParDo(WordParsingDoFn()).with_output_types(str)
        subjects | WriteToText(known_args.output, known_args.ext)


if __name__ == "__main__":
    run()
