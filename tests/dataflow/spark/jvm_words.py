"""Wordcount that also writes, per line read, the pid of the JVM whose Python worker read it
(the Spark executor: worker → pyspark.daemon → executor JVM)."""

import argparse
import re

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions


def executor_jvm(_line):
    import psutil

    proc = psutil.Process()
    for _ in range(4):
        proc = proc.parent()
        if proc is None:
            break
        if "java" in proc.name():
            return str(proc.pid)
    return "none"


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    known, rest = parser.parse_known_args(argv)
    with beam.Pipeline(options=PipelineOptions(rest)) as p:
        lines = p | beam.io.ReadFromText(known.input)
        (
            lines
            | "Split words" >> beam.FlatMap(lambda x: re.findall(r"[A-Za-z\']+", x))
            | "Pair with 1" >> beam.Map(lambda x: (x, 1))
            | "Group & Sum" >> beam.CombinePerKey(sum)
            | "Format" >> beam.MapTuple(lambda w, n: f"{w}: {n}")
            | "Write" >> beam.io.WriteToText(known.output + "-counts")
        )
        (
            lines
            | "JVM" >> beam.Map(executor_jvm)
            | "Distinct" >> beam.Distinct()
            | "Write pids" >> beam.io.WriteToText(known.output + "-jvms")
        )


if __name__ == "__main__":
    main()
