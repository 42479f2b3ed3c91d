"""The column vocabulary: the table columns several reports share, each defined once.

A column is its key in the data (and in the JSON document, CSV headers and `columns.<table>=`),
its label for people and its kind (how every renderer formats it). Builders compose tables from
these constants and groups; a column only one table has stays a `Column(...)` beside its table.
`relabel` gives a shared column another label where a table reads better with it ("Type" in a
table of customers).
"""

from __future__ import annotations

import dataclasses

from analytics.report import Column


def relabel(column: Column, label: str) -> Column:
    """`column` with another label: the same key and kind."""
    return dataclasses.replace(column, label=label)


# --- who and what: dimensions ------------------------------------------------------------------

CUSTOMER_CODE = Column("customer_code", "Customer code")
CUSTOMER_NAME = Column("customer_name", "Customer")
CUSTOMER_TYPE = Column("customer_type", "Customer type")
REGION = Column("region", "Region")
SALES_REP = Column("sales_rep", "Sales rep")
STOREFRONT_CODE = Column("storefront_code", "Storefront code")
STOREFRONT_NAME = Column("storefront_name", "Storefront")
SKU = Column("sku", "SKU")
PRODUCT_NAME = Column("product_name", "Product")
CATEGORY = Column("category", "Category")
METHOD = Column("method", "Method")  # payment method
ORDER_ID = Column("order_id", "Order")
ORDER_DATE = Column("order_date", "Order date", "date")
STATUS = Column("status", "Status")
SEGMENT = Column("segment", "Segment")
ABC_CLASS = Column("abc_class", "ABC class")
MOVEMENT = Column("movement", "Movement")
USER = Column("user", "User")
EVENT_TYPE = Column("event_type", "Event type")

CUSTOMER = (CUSTOMER_CODE, CUSTOMER_NAME)
# A table of customers: who they are and where.
CUSTOMER_DETAILS = (CUSTOMER_CODE, CUSTOMER_NAME, relabel(CUSTOMER_TYPE, "Type"), REGION)
STOREFRONT = (STOREFRONT_CODE, STOREFRONT_NAME)
PRODUCT = (SKU, PRODUCT_NAME, CATEGORY)

# --- when: time buckets ------------------------------------------------------------------------

DAY = Column("day", "Day", "date")
WEEK = Column("week", "Week of", "date")
MONTH = Column("month", "Month", "month")
CYCLE = Column("cycle", "Cycle", "month")  # a forecast cycle, YYYY-MM

# --- how much: measures ------------------------------------------------------------------------

REVENUE = Column("revenue", "Revenue", "money")
COST = Column("cost", "Cost", "money")
GROSS_PROFIT = Column("gross_profit", "Gross profit", "money")
MARGIN_PCT = Column("margin_pct", "Margin %", "pct")
ORDERS = Column("orders", "Orders", "int")
QUANTITY = Column("quantity", "Quantity", "quantity")
QUANTITY_PER_DAY = Column("velocity_per_day", "Quantity per day", "number")
UNIT_PRICE = Column("unit_price", "Unit price", "money")
REVENUE_PREVIOUS = Column("revenue_previous", "Revenue, previous period", "money")
SHARE = Column("share_pct", "Share", "pct")
SHARE_OF_REVENUE = relabel(SHARE, "Share of revenue")
CUMULATIVE_SHARE = Column("cumulative_share_pct", "Cumulative share", "pct")
RANK = Column("rank", "Rank", "int")
CUSTOMERS = Column("customers", "Customers", "int")
CASH_RECEIVED = Column("cash_received", "Cash received", "money")
PAYMENTS = Column("payments", "Payments", "int")
OUTSTANDING = Column("outstanding", "Outstanding", "money")
TOTAL_OUTSTANDING = Column("total", "Total outstanding", "money")
CREDIT_LIMIT = Column("credit_limit", "Credit limit", "money")
OVER_LIMIT_BY = Column("over_limit_amount", "Over limit by", "money")
ITEMS = Column("items", "Items", "int")
INVENTORY_VALUE = Column("inventory_value", "Inventory value", "money")
RETAIL_VALUE = Column("retail_value", "Retail value", "money")
FORECAST_QTY = Column("forecast_qty", "Forecast", "quantity")
ACTUAL_QTY = Column("actual_qty", "Actual", "quantity")
VARIANCE_QTY = Column("variance_qty", "Variance", "quantity")
VARIANCE_PCT = Column("variance_pct", "Variance %", "pct")
EVENTS = Column("events", "Events", "int")
