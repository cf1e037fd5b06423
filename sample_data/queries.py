"""The analytical query suite over the sample data, one canonical text per query.

Every engine (DuckDB, Trino, Spark) runs the same text, except for the few
spellings in ``REWRITES``. The tests compare the answers of all engines row
for row; ``make bench`` times them.
"""

from __future__ import annotations

QUERIES: dict[str, str] = {
    "orders_by_status": """
        SELECT status, count(*) AS orders, sum(total_amount) AS revenue
        FROM retail.orders GROUP BY status""",
    "monthly_revenue": """
        SELECT extract(year FROM order_date) AS y, extract(month FROM order_date) AS m,
               count(*) AS orders, sum(total_amount) AS revenue
        FROM retail.orders WHERE status <> 'cancelled'
        GROUP BY extract(year FROM order_date), extract(month FROM order_date)""",
    "top_products_by_revenue": """
        SELECT p.product_id, p.name, p.category, sum(i.line_amount) AS revenue, sum(i.quantity) AS units
        FROM retail.order_items i JOIN retail.products p ON p.product_id = i.product_id
        GROUP BY p.product_id, p.name, p.category
        ORDER BY revenue DESC, p.product_id LIMIT 10""",
    "category_share": """
        SELECT p.category, sum(i.line_amount) AS revenue,
               CAST(sum(i.line_amount) AS DOUBLE) * 100 / sum(CAST(sum(i.line_amount) AS DOUBLE)) OVER () AS pct
        FROM retail.order_items i JOIN retail.products p ON p.product_id = i.product_id
        GROUP BY p.category""",
    "repeat_customers_by_country": """
        SELECT c.country, count(*) AS customers, sum(o.n) AS orders
        FROM (SELECT customer_id, count(*) AS n FROM retail.orders GROUP BY customer_id HAVING count(*) > 1) o
        JOIN retail.customers c ON c.customer_id = o.customer_id
        GROUP BY c.country""",
    "customer_rank_in_country": """
        SELECT country, customer_id, spend, rnk FROM (
            SELECT c.country, c.customer_id, sum(o.total_amount) AS spend,
                   rank() OVER (PARTITION BY c.country ORDER BY sum(o.total_amount) DESC, c.customer_id) AS rnk
            FROM retail.orders o JOIN retail.customers c ON c.customer_id = o.customer_id
            GROUP BY c.country, c.customer_id) ranked
        WHERE rnk <= 3""",
    "running_daily_revenue": """
        SELECT order_date, revenue,
               sum(revenue) OVER (ORDER BY order_date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running
        FROM (SELECT order_date, sum(total_amount) AS revenue FROM retail.orders
              WHERE order_date < DATE '2024-03-01' GROUP BY order_date) daily""",
    "weekday_orders": """
        SELECT isodow(order_date) AS dow, count(*) AS orders
        FROM retail.orders GROUP BY isodow(order_date)""",
    "funnel": """
        SELECT device,
               count(DISTINCT session_id) AS sessions,
               count(DISTINCT CASE WHEN event_type = 'product_view' THEN session_id END) AS viewed,
               count(DISTINCT CASE WHEN event_type = 'add_to_cart' THEN session_id END) AS carted,
               count(DISTINCT CASE WHEN event_type = 'checkout' THEN session_id END) AS checked_out,
               count(DISTINCT CASE WHEN event_type = 'purchase' THEN session_id END) AS purchased
        FROM web.clickstream GROUP BY device""",
    "session_lengths": """
        SELECT pages, count(*) AS sessions FROM (
            SELECT session_id, count(*) AS pages FROM web.clickstream GROUP BY session_id) s
        GROUP BY pages""",
    "session_duration_by_referrer": """
        SELECT coalesce(referrer, 'none') AS referrer, count(*) AS sessions,
               sum(date_diff('second', date_trunc('second', first_ts), date_trunc('second', last_ts))) AS total_seconds
        FROM (SELECT session_id, max(referrer) AS referrer, min(event_ts) AS first_ts, max(event_ts) AS last_ts
              FROM web.clickstream GROUP BY session_id) s
        GROUP BY coalesce(referrer, 'none')""",
    "top_searches": """
        SELECT search_query, count(*) AS searches FROM web.clickstream
        WHERE event_type = 'search' GROUP BY search_query ORDER BY searches DESC, search_query LIMIT 10""",
    "basket_pairs": """
        SELECT a.product_id AS first_product, b.product_id AS second_product, count(*) AS together
        FROM retail.order_items a JOIN retail.order_items b
          ON a.order_id = b.order_id AND a.product_id < b.product_id
        GROUP BY a.product_id, b.product_id
        ORDER BY together DESC, first_product, second_product LIMIT 10""",
    "orders_vs_purchases": """
        SELECT o.channel, count(*) AS orders, count(w.order_id) AS with_purchase_event
        FROM retail.orders o LEFT JOIN (
            SELECT DISTINCT order_id FROM web.clickstream WHERE event_type = 'purchase') w
          ON w.order_id = o.order_id
        GROUP BY o.channel""",
}

# Every query is one text in DuckDB's dialect; lakehouse translates it for
# Trino and Spark (``lakehouse.engines.translate``), e.g. isodow() becomes
# Trino's day_of_week() and Spark's dayofweek arithmetic. No engine needs a
# rewrite of its own any more.
REWRITES: dict[str, dict[str, str]] = {"duckdb": {}, "trino": {}, "spark": {}}


def query_for(name: str, engine: str) -> str:
    """The text ``engine`` runs for query ``name``."""
    sql = QUERIES[name]
    for canonical, spelling in REWRITES[engine].items():
        sql = sql.replace(canonical, spelling)
    return sql
