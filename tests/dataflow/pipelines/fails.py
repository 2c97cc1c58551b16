"""A pipeline whose DoFn raises."""

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions


class Explode(beam.DoFn):
    def process(self, element):
        if element == 3:
            raise ValueError(f"cannot handle element {element}: deliberate failure")
        yield element


def main():
    with beam.Pipeline(options=PipelineOptions()) as p:
        p | "Numbers" >> beam.Create([1, 2, 3, 4]) | "Explode" >> beam.ParDo(Explode())


if __name__ == "__main__":
    main()
