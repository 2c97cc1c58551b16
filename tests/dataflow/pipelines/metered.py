"""A pipeline with user metrics, a slow step and a composite, that imports a local package.

The DoFn imports `shout`, which only --extra_package or --setup_file ships to the workers. It
counts words with Metrics.counter and their lengths with Metrics.distribution; "Slow" sleeps
so its wall time is known to be at least SLEEP_SECONDS. After the job, the driver prints the
user metrics it can query from its PipelineResult as one JSON line (METRICS {...}), and with
DataflowRunner the names of all metrics by step (SYSTEM [...]).
"""

import argparse
import json
import time

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

SLEEP_SECONDS = 1.0


class Shout(beam.DoFn):
    def __init__(self):
        self.words = Metrics.counter("metered", "words")
        self.lengths = Metrics.distribution("metered", "word_lengths")

    def process(self, word):
        import shout  # shipped with --extra_package or --setup_file

        self.words.inc()
        self.lengths.update(len(word))
        yield shout.shout(word)


def slow(word):
    time.sleep(SLEEP_SECONDS / 2)
    return word


class Tidy(beam.PTransform):
    """A composite of two steps: its wall time is the sum of theirs."""

    def expand(self, words):
        return words | "Strip" >> beam.Map(str.strip) | "Slow" >> beam.Map(slow)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", required=True)
    known, rest = parser.parse_known_args(argv)
    p = beam.Pipeline(options=PipelineOptions(rest))
    (
        p
        | "Words" >> beam.Create(["hi", "there"])
        | "Tidy" >> Tidy()
        | "Shout" >> beam.ParDo(Shout())
        | "Write" >> beam.io.WriteToText(known.output, shard_name_template="")
    )
    result = p.run()
    result.wait_until_finish()
    found = result.metrics().query(MetricsFilter().with_namespace("metered"))
    out = {
        "counters": {f"{r.key.step}:{r.key.metric.name}": r.committed for r in found["counters"]},
        "distributions": {
            f"{r.key.step}:{r.key.metric.name}": [
                r.committed.count,
                r.committed.sum,
                r.committed.min,
                r.committed.max,
            ]
            for r in found["distributions"]
        },
    }
    print("METRICS " + json.dumps(out, sort_keys=True))
    if hasattr(result.metrics(), "all_metrics"):  # DataflowRunner: the system metrics too
        system = {f"{r.key.step}:{r.key.metric.name}" for r in result.metrics().all_metrics()}
        print("SYSTEM " + json.dumps(sorted(system)))


if __name__ == "__main__":
    main()
