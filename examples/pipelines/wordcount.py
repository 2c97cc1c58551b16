"""The chapter's wordcount driver: run it with DataflowRunner or PortableRunner (see README)."""

import argparse
import re

import apache_beam as beam
from apache_beam.io import ReadFromText, WriteToText
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions


def run(argv=None, save_main_session=True):
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", dest="input", required=True, help="Input file to process.")
    parser.add_argument("--output", dest="output", required=True, help="Output prefix.")
    known_args, pipeline_args = parser.parse_known_args(argv)
    pipeline_options = PipelineOptions(pipeline_args)
    pipeline_options.view_as(SetupOptions).save_main_session = save_main_session
    with beam.Pipeline(options=pipeline_options) as p:
        lines = p | ReadFromText(known_args.input)
        counts = (
            lines
            | "Split words"
            >> (beam.FlatMap(lambda x: re.findall(r"[A-Za-z\']+", x)).with_output_types(str))
            | "Pair with 1" >> beam.Map(lambda x: (x, 1))
            | "Group & Sum" >> beam.CombinePerKey(sum)
        )

        def format_result(word_count):
            (word, count) = word_count
            return f"{word}: {count}"

        output = counts | "Format" >> beam.Map(format_result)
        output | WriteToText(known_args.output)


if __name__ == "__main__":
    run()
