"""pipeline2.py: separate subjects with grades from a PCollection of tuples (FlatMapTuple).

python pipeline2.py --runner FnApiRunner
"""

import sys

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions


def my_format(sub, marks):
    yield f"{sub}\t{marks}"


def run(argv=None):
    args = list(sys.argv[1:] if argv is None else argv) or ["--runner", "FnApiRunner"]
    with beam.Pipeline(options=PipelineOptions(args)) as pipeline:
        (
            pipeline
            | "Subjects"
            >> beam.Create(
                [
                    ("English", "A"),
                    ("Maths", "B+"),
                    ("Science", "A-"),
                    ("French", "A"),
                    ("Arts", "A+"),
                ]
            )
            | "Format subjects with marks" >> beam.FlatMapTuple(my_format)
            | beam.Map(print)
        )


if __name__ == "__main__":
    run()
