"""The seed's first pipelines: Create + FlatMap(str.split), FlatMapTuple, ParDo(DoFn), text out."""

import argparse

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions


class Upper(beam.DoFn):
    def process(self, element):
        yield element.upper()


def pair(word, n):
    yield f"{word}={n}"


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", required=True)
    known, rest = parser.parse_known_args(argv)
    with beam.Pipeline(options=PipelineOptions(rest)) as p:
        words = (
            p
            | "Create lines" >> beam.Create(["the cat sat", "the dog ran", "a cat ran"])
            | "Split words" >> beam.FlatMap(str.split)
        )
        (
            words
            | "Pair" >> beam.Map(lambda w: (w, 1))
            | "Count" >> beam.CombinePerKey(sum)
            | "Format" >> beam.FlatMapTuple(pair)
            | "Upper" >> beam.ParDo(Upper())
            | "Write" >> beam.io.WriteToText(known.output, shard_name_template="")
        )


if __name__ == "__main__":
    main()
