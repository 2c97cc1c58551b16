"""A pipeline whose DoFn tries to read a file the job must not see (the gateway's database)."""

import argparse

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions


class Snoop(beam.DoFn):
    def process(self, path):
        try:
            with open(path, "rb") as f:
                yield "READ " + f.read(16).hex()
        except OSError as exc:
            yield "REFUSED " + type(exc).__name__


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--output", required=True)
    known, rest = parser.parse_known_args(argv)
    with beam.Pipeline(options=PipelineOptions(rest)) as p:
        (
            p
            | "Target" >> beam.Create([known.target])
            | "Snoop" >> beam.ParDo(Snoop())
            | "Write" >> beam.io.WriteToText(known.output, shard_name_template="")
        )


if __name__ == "__main__":
    main()
