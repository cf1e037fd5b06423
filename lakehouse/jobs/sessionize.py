"""Sample Spark step: sessionize the clickstream and build daily sales.

    lakehouse spark submit lakehouse/jobs/sessionize.py

Writes two Iceberg tables with MERGE INTO, so running the step again updates
rows in place instead of duplicating them:

- ``web.sessions``: one row per session (id, customer, start, end, pages,
  events, converted, order), partitioned by month of session start (about
  6,000 sessions a month at scale 1: daily partitions would be tiny files);
- ``retail.daily_sales``: revenue, orders and units per day and category,
  partitioned by year (a few thousand rows a year).
"""

from __future__ import annotations

from pyspark.sql import SparkSession

SESSIONS_DDL = """
CREATE TABLE IF NOT EXISTS web.sessions (
    session_id STRING, customer_id BIGINT, session_start TIMESTAMP_NTZ, session_end TIMESTAMP_NTZ,
    pages INT, events INT, converted BOOLEAN, order_id BIGINT, device STRING, referrer STRING)
USING iceberg PARTITIONED BY (months(session_start))
"""

SESSIONS_MERGE = """
MERGE INTO web.sessions t USING (
    SELECT session_id,
           max(customer_id) AS customer_id,
           min(event_ts) AS session_start,
           max(event_ts) AS session_end,
           CAST(count_if(event_type IN ('page_view', 'product_view', 'search')) AS INT) AS pages,
           CAST(count(*) AS INT) AS events,
           max(event_type = 'purchase') AS converted,
           max(order_id) AS order_id,
           max(device) AS device,
           max(referrer) AS referrer
    FROM web.clickstream GROUP BY session_id) s
ON t.session_id = s.session_id
WHEN MATCHED THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *
"""

DAILY_SALES_DDL = """
CREATE TABLE IF NOT EXISTS retail.daily_sales (
    order_date DATE, category STRING, orders BIGINT, units BIGINT, revenue DECIMAL(18, 2))
USING iceberg PARTITIONED BY (years(order_date))
"""

DAILY_SALES_MERGE = """
MERGE INTO retail.daily_sales t USING (
    SELECT o.order_date, p.category,
           count(DISTINCT o.order_id) AS orders,
           CAST(sum(i.quantity) AS BIGINT) AS units,
           CAST(sum(i.line_amount) AS DECIMAL(18, 2)) AS revenue
    FROM retail.orders o
    JOIN retail.order_items i ON i.order_id = o.order_id
    JOIN retail.products p ON p.product_id = i.product_id
    WHERE o.status <> 'cancelled'
    GROUP BY o.order_date, p.category) s
ON t.order_date = s.order_date AND t.category = s.category
WHEN MATCHED THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *
"""


def main() -> None:
    spark = SparkSession.builder.appName("sessionize").getOrCreate()
    for statement in (SESSIONS_DDL, SESSIONS_MERGE, DAILY_SALES_DDL, DAILY_SALES_MERGE):
        spark.sql(statement)
    sessions = spark.sql("SELECT count(*) AS n, count_if(converted) AS c FROM web.sessions").first()
    days = spark.sql("SELECT count(*) AS n FROM retail.daily_sales").first()
    assert sessions is not None and days is not None
    print(f"web.sessions: {sessions['n']} sessions, {sessions['c']} converted")
    print(f"retail.daily_sales: {days['n']} day x category rows")
    spark.stop()


if __name__ == "__main__":
    main()
