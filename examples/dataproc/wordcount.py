"""Word count as a PySpark job: the Dataproc counterpart of the chapter's Beam wordcount.

    cloudlet dataproc clusters create c1 --num-workers 2 --worker-memory 512m
    cloudlet dataproc jobs submit pyspark examples/dataproc/wordcount.py --cluster c1 -- INPUT

INPUT is a text file every worker can read (a path on this machine). The job prints one
`word: count` line per word, most frequent first (ties by word), then `distinct words: N` and
the number of executor processes the counting ran in.
"""

from __future__ import annotations

import os
import re
import sys

from pyspark.sql import SparkSession


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: wordcount.py INPUT", file=sys.stderr)
        return 2
    spark = SparkSession.builder.appName("wordcount").getOrCreate()
    try:
        lines = spark.sparkContext.textFile(argv[0], minPartitions=4)
        words = lines.flatMap(lambda line: re.findall(r"[A-Za-z']+", line.lower()))
        counts = words.map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b)
        pids = counts.mapPartitions(lambda _: [os.getpid()]).distinct().count()
        result = sorted(counts.collect(), key=lambda kv: (-kv[1], kv[0]))
    finally:
        spark.stop()
    for word, count in result:
        print(f"{word}: {count}")
    print(f"distinct words: {len(result)}")
    print(f"executor processes: {pids}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
