"""Reads gs:// as the job's service account, and says where its code finds the metadata server
(GCE_METADATA_HOST, whose path carries the job's workload token): tests/dataflow/test_standby.py."""

import argparse
import os

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions


def where(_):
    return "HOST " + os.environ.get("GCE_METADATA_HOST", "")


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    known, rest = parser.parse_known_args(argv)
    with beam.Pipeline(options=PipelineOptions(rest)) as p:
        lines = (
            p
            | "Read" >> beam.io.ReadFromText(known.input, validate=False)
            | "Upper" >> beam.Map(str.upper)
        )
        host = p | "One" >> beam.Create([None]) | "Where" >> beam.Map(where)
        (
            (lines, host)
            | "Both" >> beam.Flatten()
            | "Write" >> beam.io.WriteToText(known.output, shard_name_template="")
        )


if __name__ == "__main__":
    main()
