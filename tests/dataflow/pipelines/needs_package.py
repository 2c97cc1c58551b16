"""A pipeline whose DoFn imports a package that only its --requirements_file provides."""

import argparse

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions


def fmt(n):
    import humanize  # not installed in cloudlet's own environment

    return humanize.intcomma(n)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", required=True)
    known, rest = parser.parse_known_args(argv)
    with beam.Pipeline(options=PipelineOptions(rest)) as p:
        (
            p
            | "Numbers" >> beam.Create([1234567, 89])
            | "Format" >> beam.Map(fmt)
            | "Write" >> beam.io.WriteToText(known.output, shard_name_template="")
        )


if __name__ == "__main__":
    main()
