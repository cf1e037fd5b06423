"""The crawler (the Glue crawler's role): register what lands in S3 as Iceberg tables.

``crawl(settings, "s3://bucket/prefix")`` (``lake.crawl``, ``lakehouse crawl``)
finds one table per dataset folder, Hive-style partitions, CSV / JSON / Parquet
files (plain, gzip or zstd), registers Parquet in place and converts the rest
through ingest, and remembers every file it added (``record``), so a re-crawl
adds only new files, even after a crash. See ``run`` for what a run reports.
"""

from lakehouse.crawl.run import CrawlReport, crawl, run_crawler
from lakehouse.crawl.spec import CrawlerSpec, declared_crawlers

__all__ = ["CrawlReport", "CrawlerSpec", "crawl", "declared_crawlers", "run_crawler"]
