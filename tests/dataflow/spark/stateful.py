"""A pipeline with a stateful DoFn (BagState), which the spark engine does not run."""

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms import userstate


class KeepState(beam.DoFn):
    SEEN = userstate.BagStateSpec("seen", VarIntCoder())

    def process(self, kv, seen=beam.DoFn.StateParam(SEEN)):
        seen.add(kv[1])
        yield kv


def main(argv=None):
    with beam.Pipeline(options=PipelineOptions(argv)) as p:
        _ = p | beam.Create([("a", 1), ("a", 2)]) | "Keep state" >> beam.ParDo(KeepState())


if __name__ == "__main__":
    main()
