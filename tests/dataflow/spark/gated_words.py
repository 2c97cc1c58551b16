"""Wordcount whose per-line step waits for a `go` file in --markers: each task of that step
first writes `<markers>/<python worker pid>-<executor JVM pid>`, so a test can kill the
Python worker, its executor JVM or the driver while the job is certainly mid-way."""

import argparse
import os
import re
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions


def executor_jvm():
    import psutil

    proc = psutil.Process()
    for _ in range(4):
        proc = proc.parent()
        if proc is None:
            break
        if "java" in proc.name():
            return proc.pid
    return 0


class Gate(beam.DoFn):
    def __init__(self, markers):
        self.markers = markers

    def start_bundle(self):
        self.marked = False

    def process(self, line):
        if not self.marked:
            self.marked = True
            name = f"{os.getpid()}-{executor_jvm()}"
            with open(os.path.join(self.markers, name + ".tmp"), "w"):
                pass
            os.replace(os.path.join(self.markers, name + ".tmp"), os.path.join(self.markers, name))
        while not os.path.exists(os.path.join(self.markers, "go")):
            time.sleep(0.2)
        yield from re.findall(r"[A-Za-z\']+", line)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--markers", required=True)
    known, rest = parser.parse_known_args(argv)
    with beam.Pipeline(options=PipelineOptions(rest)) as p:
        (
            p
            | beam.io.ReadFromText(known.input)
            | "Gate" >> beam.ParDo(Gate(known.markers))
            | "Pair with 1" >> beam.Map(lambda x: (x, 1))
            | "Group & Sum" >> beam.CombinePerKey(sum)
            | "Format" >> beam.MapTuple(lambda w, n: f"{w}: {n}")
            | "Write" >> beam.io.WriteToText(known.output)
        )


if __name__ == "__main__":
    main()
