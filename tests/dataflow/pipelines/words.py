"""The seed's first pipelines: Create + FlatMap(str.split), FlatMapTuple, ParDo(DoFn), text out."""

import argparse

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions


class Upper(beam.DoFn):
    def process(self, element):
        yield element.upper()


class Remember(beam.DoFn):
    """A stateful identity (--stateful): the native engine hands such a job to fnapi."""

    SEEN = beam.transforms.userstate.CombiningValueStateSpec("seen", sum)

    def process(self, kv, seen=beam.DoFn.StateParam(SEEN)):
        seen.add(1)
        yield kv


def pair(word, n):
    yield f"{word}={n}"


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", required=True)
    parser.add_argument("--stateful", action="store_true")
    known, rest = parser.parse_known_args(argv)
    with beam.Pipeline(options=PipelineOptions(rest)) as p:
        words = (
            p
            | "Create lines" >> beam.Create(["the cat sat", "the dog ran", "a cat ran"])
            | "Split words" >> beam.FlatMap(str.split)
        )
        counts = words | "Pair" >> beam.Map(lambda w: (w, 1)) | "Count" >> beam.CombinePerKey(sum)
        if known.stateful:
            counts = counts | "Remember" >> beam.ParDo(Remember())
        (
            counts
            | "Format" >> beam.FlatMapTuple(pair)
            | "Upper" >> beam.ParDo(Upper())
            | "Write" >> beam.io.WriteToText(known.output, shard_name_template="")
        )


if __name__ == "__main__":
    main()
