"""A slow pipeline the spark engine runs (no CombineGlobally: its KeyWithVoid is not planned)."""

import argparse
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions


def slow(n):
    time.sleep(0.01)
    return (n % 3, n)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--elements", type=int, default=100000)
    known, rest = parser.parse_known_args(argv)
    with beam.Pipeline(options=PipelineOptions(rest)) as p:
        (
            p
            | "Numbers" >> beam.Create(list(range(known.elements)))
            | "Slow" >> beam.Map(slow)
            | "Sum" >> beam.CombinePerKey(sum)
        )


if __name__ == "__main__":
    main()
