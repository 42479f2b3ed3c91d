"""Deterministic demo data: a plausible trading business over three years, loaded in one transaction."""

from __future__ import annotations

import datetime as dt
import math
import random
import time
import unicodedata
from array import array
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Engine, Table, bindparam, exists, func, insert, select, text, update
from sqlalchemy.orm import Session

from accounts.users import DEMO_ROLES, user_by_username
from core.db import bump_data_version, business_by_code
from core.models import (
    AuditEvent,
    Base,
    Business,
    Customer,
    Forecast,
    InventoryLevel,
    Payment,
    Product,
    Sale,
    SaleLine,
    Storefront,
    User,
)

DEMO_CODE = "demo"
DEMO_NAME = "Demo Trading Co."

# Sale lines are generated and written in chunks of about this many, one progress call per chunk.
CHUNK_LINES = 50_000

RETAIL_CUSTOMERS = 400
WHOLESALE_CUSTOMERS = 100
REGIONS = ("North", "South", "East", "West", "Central")
REGION_WEIGHTS = (0.22, 0.22, 0.18, 0.18, 0.20)
STOREFRONTS = (
    ("NTH", "Harbour Street", "North"),
    ("CEN", "Market Square", "Central"),
    ("STH", "Riverside Mall", "South"),
)
HOME_STOREFRONT = {"North": 0, "Central": 1, "East": 1, "South": 2, "West": 2}
REPS_BY_REGION = {
    "North": ("ana", "ben"),
    "South": ("carla", "dev"),
    "East": ("emil",),
    "West": ("farah", "goran"),
    "Central": ("hana",),
}
REPS = ("ana", "ben", "carla", "dev", "emil", "farah", "goran", "hana")
# Forecast multiplier per rep: most over-forecast by 5-15 %, one is cautious (about +7 % overall).
REP_BIAS = {
    "ana": 1.12,
    "ben": 1.06,
    "carla": 1.05,
    "dev": 1.10,
    "emil": 0.97,
    "farah": 1.08,
    "goran": 1.14,
    "hana": 1.04,
}
# Chance that a rep submits a cycle's forecasts after the cycle has started.
REP_LATE = {
    "ana": 0.05,
    "ben": 0.08,
    "carla": 0.04,
    "dev": 0.10,
    "emil": 0.06,
    "farah": 0.05,
    "goran": 0.30,
    "hana": 0.08,
}

# Month factors (January first): retail peaks in December, wholesale stocks up in November; both dip in summer.
RETAIL_SEASON = (0.85, 0.80, 0.95, 1.00, 1.00, 0.90, 0.80, 0.80, 0.95, 1.00, 1.15, 1.70)
WHOLESALE_SEASON = (0.90, 0.90, 1.00, 1.00, 1.05, 0.90, 0.75, 0.75, 1.00, 1.05, 1.20, 1.45)
# Weekday factors (Monday first): shops sell on Saturdays, wholesale customers order on weekdays.
RETAIL_WEEKDAY = (0.90, 0.95, 1.00, 1.05, 1.25, 1.30, 0.55)
WHOLESALE_WEEKDAY = (1.20, 1.10, 1.10, 1.10, 1.00, 0.20, 0.02)
CLOSED_DAYS = ((12, 25), (12, 26), (1, 1))
GROWTH_PER_YEAR = 1.15
WHOLESALE_ORDER_SHARE = 0.30
# Lines per order, weights for 1..6 lines.
RETAIL_LINES = (30, 25, 20, 12, 8, 5)
WHOLESALE_LINES = (5, 10, 20, 25, 22, 18)
RETAIL_QTY = (1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6, 8, 10, 12)
# Share of a customer's lines drawn from its usual products (the rest follow overall popularity).
RETAIL_USUAL_SHARE = 0.60
WHOLESALE_USUAL_SHARE = 0.85
# Forecasts cover each rep's biggest wholesale customers (key accounts) and their top usual products.
KEY_ACCOUNTS_PER_REP = 3
FORECAST_PRODUCTS = 3
DISCOUNTS = {0: 0.0, 5: 0.05, 10: 0.10, 15: 0.15}  # whole percent -> the stored fraction

RETAIL_METHODS = ("card", "cash", "mobile")
RETAIL_METHOD_WEIGHTS = (0.5, 0.3, 0.2)
WHOLESALE_METHODS = ("bank_transfer", "card", "mobile", "cash")
WHOLESALE_METHOD_WEIGHTS = (0.8, 0.1, 0.05, 0.05)

FIRST_NAMES = (
    "Anna", "Lukas", "Sofia", "Jonas", "Marie", "Elias", "Lena", "Noah", "Emma", "Felix", "Clara", "Paul",
    "Mia", "Leon", "Hanna", "Jakob", "Ida", "Léa", "Matteo", "Zoë", "José", "Inês", "Søren", "Åsa",
    "Łukasz", "Chloé", "Anaïs", "Björn", "Renée", "Aylin", "Mehmet", "Priya", "Kenji", "Ngozi", "Tomás",
    "María", "Jürgen", "Małgorzata", "Dagný", "Oskar",
)  # fmt: skip
LAST_NAMES = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann",
    "Schäfer", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger",
    "Hartmann", "Lange", "Werner", "Krause", "Lehmann", "Köhler", "Jansen", "de Vries", "Rossi", "García",
    "Fernández", "Novák", "Kowalski", "Nielsen", "Lindqvist", "Öztürk", "Dubois", "Moreau", "Silva",
    "O'Brien", "Papadopoulos",
)  # fmt: skip
PLACES = (
    "am Markt", "am Hafen", "Altstadt", "am Dom", "Nordstadt", "am Park", "Südufer", "am Ring", "Lindenhof",
    "Westend", "am See", "Bahnhof", "Kirchplatz", "Rosengarten",
)  # fmt: skip
SHOP_KINDS = (
    "Kiosk",
    "Minimarkt",
    "Späti",
    "Tabak & Presse",
    "Bio-Laden",
    "Feinkost",
    "Getränke",
    "Drogerie",
)
VENUE_KINDS = ("Café", "Hotel", "Restaurant", "Bistro", "Gasthaus", "Kantine", "Bäckerei", "Trattoria")
COMPANY_FORMS = ("GmbH", "& Co. KG", "& Søn", "B.V.", "S.L.", "Ltd", "AG", "& Söhne")
# Names that show real-world text in pages and files: accents, Nordic letters, currency signs.
SPECIAL_WHOLESALE = (
    "Café Müller", "Björk & Søn", "Hôtel du Lac", "Smørrebrød Huset ApS", "Pâtisserie Dupont",
    "Bodega Grande", "Trattoria Da Luigi", "Gasthaus Zum Löwen",
)  # fmt: skip
SPECIAL_RETAIL = ("Alles für 1 € Krüger", "Piso ₱1 Sari-Sari Store", "Zoë's Corner Shop", "Kiosk Ångström")

# category: (sku prefix, items, (small variant, large variant), (low, high) price of the small one in
# euros, price factor of the large one, case size)
CATEGORIES: tuple[tuple[str, str, tuple[str, ...], tuple[str, str], tuple[float, float], float, int], ...] = (
    ("Beverages", "BEV", ("Sparkling Water", "Still Water", "Orange Juice", "Apple Juice", "Cola", "Lemonade",
     "Iced Tea", "Ginger Ale", "Tonic Water", "Cold Brew Coffee"), ("330 ml", "1.5 L"), (0.79, 2.99), 2.6, 24),
    ("Coffee & Tea", "COF", ("Espresso Beans", "Filter Coffee", "Decaf Coffee", "Green Tea", "Black Tea",
     "Chamomile Tea", "Earl Grey", "Rooibos", "Chai Blend", "Instant Coffee"), ("250 g", "1 kg"),
     (2.49, 8.99), 3.4, 12),
    ("Snacks", "SNK", ("Potato Chips", "Tortilla Chips", "Pretzels", "Salted Peanuts", "Cashews", "Popcorn",
     "Rice Crackers", "Plantain Chips", "Trail Mix", "Veggie Crisps"), ("150 g", "500 g"), (0.99, 3.49), 2.8,
     12),
    ("Confectionery", "CON", ("Milk Chocolate", "Dark Chocolate", "Gummy Bears", "Licorice", "Caramels",
     "Marzipan", "Nougat Bar", "Mints", "Lollipops", "Toffee"), ("100 g", "1 kg"), (0.89, 3.99), 7.5, 24),
    ("Dairy", "DAI", ("Whole Milk", "Oat Drink", "Butter", "Gouda", "Emmental", "Greek Yogurt",
     "Cream Cheese", "Mozzarella", "Feta", "Skyr"), ("250 g", "1 kg"), (0.99, 4.49), 3.5, 12),
    ("Bakery", "BAK", ("Croissants", "Sourdough Loaf", "Rye Bread", "Bagels", "Pretzel Rolls", "Muffins",
     "Baguette", "Ciabatta", "Cinnamon Rolls", "Brioche"), ("6 pcs", "24 pcs"), (1.49, 4.99), 3.6, 6),
    ("Canned Goods", "CAN", ("Chopped Tomatoes", "Chickpeas", "Kidney Beans", "Sweetcorn", "Tuna", "Sardines",
     "Coconut Milk", "Peaches", "Lentil Soup", "Olives"), ("400 g", "2.5 kg"), (0.69, 2.99), 5.2, 24),
    ("Pasta & Rice", "PAS", ("Spaghetti", "Penne", "Fusilli", "Basmati Rice", "Jasmine Rice", "Risotto Rice",
     "Egg Noodles", "Couscous", "Lasagne Sheets", "Rice Noodles"), ("500 g", "5 kg"), (0.89, 3.49), 8.0, 12),
    ("Oils & Sauces", "SAU", ("Olive Oil", "Sunflower Oil", "Balsamic Vinegar", "Ketchup", "Mustard",
     "Mayonnaise", "Soy Sauce", "Pesto", "Hot Sauce", "Tomato Passata"), ("250 ml", "1 L"), (1.29, 6.99), 3.2,
     12),
    ("Frozen", "FRZ", ("Garden Peas", "Fries", "Pizza Margherita", "Leaf Spinach", "Berry Mix",
     "Vanilla Ice Cream", "Fish Fillets", "Dumplings", "Vegetable Mix", "Puff Pastry"), ("450 g", "2.5 kg"),
     (1.49, 4.99), 4.5, 12),
    ("Cleaning", "CLN", ("Dish Soap", "All-Purpose Cleaner", "Glass Cleaner", "Laundry Detergent",
     "Fabric Softener", "Bleach", "Floor Cleaner", "Scrub Sponges", "Descaler", "Liquid Hand Soap"),
     ("500 ml", "5 L"), (1.29, 5.49), 6.5, 12),
    ("Personal Care", "PER", ("Shampoo", "Conditioner", "Shower Gel", "Toothpaste", "Deodorant",
     "Body Lotion", "Lip Balm", "Sunscreen SPF 30", "Razor Blades", "Cotton Pads"), ("Regular", "Value Pack"),
     (1.19, 7.99), 2.7, 12),
    ("Paper Goods", "PAP", ("Paper Towels", "Toilet Paper", "Napkins", "Tissues", "Baking Paper",
     "Aluminium Foil", "Cling Film", "Paper Cups", "Paper Plates", "Coffee Filters"), ("Pack of 4",
     "Pack of 24"), (1.29, 4.49), 5.0, 6),
    ("Household", "HOU", ("LED Bulb", "AA Batteries", "Tealight Candles", "Matches", "Trash Bags",
     "Food Containers", "Kitchen Towels", "Clothes Pegs", "Sponge Cloths", "Storage Jars"),
     ("Single", "Pack of 10"), (0.99, 6.99), 7.0, 10),
    ("Stationery", "STA", ("Notebook A5", "Ballpoint Pens", "Printer Paper", "Sticky Notes", "Highlighters",
     "Envelopes", "Stapler", "Glue Stick", "Scissors", "Ring Binder"), ("Single", "Box of 10"), (0.99, 5.99),
     7.5, 10),
)  # fmt: skip

# The demo's audit log names only users the demo business has: its own users when it has some, else the
# admin, manager and staff that `manage.py users ensure-demo` gives it (see `_audit_users`).
AUDIT_HOSTS = {"admin": 10, "manager": 21, "staff": 31}
AUDIT_REPORTS = (
    "kpi_dashboard", "sales_summary", "forecast_vs_actual", "credit_aging", "gross_profit",
    "inventory_valuation", "payments", "product_analysis",
)  # fmt: skip
IMPORT_ENTITIES = ("sales", "payments", "customers", "products", "forecasts", "inventory")


@dataclass(frozen=True)
class DemoSummary:
    """What load_demo wrote: row counts per entity and the wall-clock seconds it took."""

    business_id: int
    customers: int
    products: int
    storefronts: int
    sales: int
    lines: int
    payments: int
    forecasts: int
    inventory: int
    audit_events: int
    seconds: float


@dataclass(slots=True)
class _Customer:
    code: str
    name: str
    wholesale: bool
    region: str
    email: str
    active: bool
    weight: float
    first_day: int  # first and last day index on which the customer can order
    last_day: int
    rep: str
    storefront: int
    method: str
    discount_pct: int
    usual_share: float
    cases: float  # typical number of cases per wholesale line
    usual: list[int] = field(default_factory=list)  # product indexes, most bought first
    usual_cum: list[float] = field(default_factory=list)
    slow_from: int | None = None  # day index from which a slow payer stops paying
    key_account: bool = False


@dataclass(slots=True)
class _Product:
    sku: str
    name: str
    category: str
    cost_cents: int
    price_cents: int
    reorder_level: int
    case_size: int
    popularity: float


@dataclass(slots=True)
class _Calendar:
    days: list[dt.date]
    day_text: list[str]  # ISO dates, the form SQLite stores them in
    month_of_day: list[int]  # month index from the month of the first day
    months: list[dt.date]  # first day of each month index
    coverage: list[float]  # share of each month's days inside the period


def has_data(engine: Engine, business_code: str) -> bool:
    """True when the business `business_code` exists and has at least one sale."""
    with Session(engine) as session:
        query = select(exists().where(Sale.business_id == Business.id, Business.code == business_code))
        return bool(session.scalar(query))


def load_demo(
    engine: Engine,
    business_code: str = DEMO_CODE,
    *,
    rows: int = 100_000,
    seed: int = 42,
    today: dt.date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Fill business `business_code` (created if missing) with three years of demo data ending `today`.

    Exactly `rows` sale lines; the same seed, today and rows give the same data. Everything is
    written in one transaction, so a failure leaves nothing behind. Raises ValueError when the
    business already has data. `progress(done_lines, total_lines)` is called after each chunk.
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    started = time.perf_counter()
    today = today or dt.date.today()
    rng = random.Random(seed)
    calendar = _calendar(today)
    products = _products(rng)
    customers = _customers(rng, products, len(calendar.days))
    order_day, order_customer, order_lines = _order_skeleton(rng, calendar, customers, rows)

    with Session(engine) as session, session.begin():
        business_id = _claim_business(session, business_code)
        writer = _BulkWriter(session, business_id)
        customer_ids = _insert_customers(session, business_id, customers)
        product_ids = _insert_products(session, business_id, products)
        storefront_ids = _insert_storefronts(session, business_id)
        sales = _SalesWriter(
            rng, writer, business_id, calendar, customers, products, customer_ids, product_ids, storefront_ids
        )
        done = 0
        start = 0
        while start < len(order_day):
            end = start
            lines_in_chunk = 0
            while end < len(order_day) and lines_in_chunk < CHUNK_LINES:
                lines_in_chunk += order_lines[end]
                end += 1
            sales.write(order_day, order_customer, order_lines, start, end)
            done += lines_in_chunk
            start = end
            if progress is not None:
                progress(done, rows)
        writer.finish_ids()
        _update_credit_limits(session, rng, customers, customer_ids, sales)
        forecasts = _insert_forecasts(
            session, rng, business_id, calendar, customers, products, sales, customer_ids, product_ids
        )
        inventory = _insert_inventory(session, rng, business_id, today, products, product_ids, storefront_ids)
        audit_events = _insert_audit_events(
            session, rng, business_id, today, _audit_users(session, business_id)
        )
        bump_data_version(session, business_id)

    return DemoSummary(
        business_id=business_id,
        customers=len(customers),
        products=len(products),
        storefronts=len(STOREFRONTS),
        sales=len(order_day),
        lines=sales.line_count,
        payments=sales.payment_count,
        forecasts=forecasts,
        inventory=inventory,
        audit_events=audit_events,
        seconds=time.perf_counter() - started,
    )


# --- the world: calendar, products, customers -------------------------------------------------


def _calendar(today: dt.date) -> _Calendar:
    try:
        three_years_ago = today.replace(year=today.year - 3)
    except ValueError:  # 29 February
        three_years_ago = today.replace(year=today.year - 3, day=28)
    first = three_years_ago + dt.timedelta(days=1)
    days = [first + dt.timedelta(days=i) for i in range((today - first).days + 1)]
    base = first.year * 12 + first.month - 1
    month_of_day = [d.year * 12 + d.month - 1 - base for d in days]
    months = [dt.date((base + i) // 12, (base + i) % 12 + 1, 1) for i in range(month_of_day[-1] + 1)]
    in_period = [0] * len(months)
    for m in month_of_day:
        in_period[m] += 1
    coverage = [in_period[i] / _days_in_month(months[i]) for i in range(len(months))]
    return _Calendar(days, [d.isoformat() for d in days], month_of_day, months, coverage)


def _days_in_month(first: dt.date) -> int:
    following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return (following - first).days


def _products(rng: random.Random) -> list[_Product]:
    products: list[_Product] = []
    loss_makers = set(rng.sample(range(300), 3))
    for category, prefix, items, variants, (low, high), large_factor, case_size in CATEGORIES:
        for item in items:
            small = _price_cents(rng.uniform(low, high))
            for variant_no, variant in enumerate(variants):
                index = len(products)
                price = (
                    small
                    if variant_no == 0
                    else _price_cents(small / 100 * large_factor * rng.uniform(0.85, 1))
                )
                if index in loss_makers:
                    margin = -rng.uniform(0.04, 0.15)
                else:
                    margin = min(0.60, max(0.10, rng.gauss(0.32, 0.11)))
                popularity = rng.lognormvariate(0, 1.0) * (1.3 if variant_no == 0 else 0.8)
                products.append(
                    _Product(
                        sku=f"{prefix}-{len(products) % 20 + 1:03d}",
                        name=f"{item} {variant}",
                        category=category,
                        cost_cents=max(1, round(price * (1 - margin))),
                        price_cents=price,
                        reorder_level=0,
                        case_size=case_size if variant_no == 0 else max(1, case_size // 4),
                        popularity=popularity,
                    )
                )
    ranked = sorted(range(len(products)), key=lambda i: -products[i].popularity)
    for rank, index in enumerate(ranked):
        products[index].reorder_level = (60, 40, 30, 20, 15, 10)[rank * 6 // len(products)]
    return products


def _price_cents(euros: float) -> int:
    """A shelf price ending in .49 or .99."""
    cents = max(49, round(euros * 100))
    return cents // 50 * 50 + 49


def _customers(rng: random.Random, products: list[_Product], n_days: int) -> list[_Customer]:
    names = _customer_names(rng)
    popularity = [p.popularity for p in products]
    customers: list[_Customer] = []
    for index, (name, wholesale, person) in enumerate(names):
        region = rng.choices(REGIONS, REGION_WEIGHTS)[0]
        # The first customer of each kind is always there: the fallback when orders need someone.
        always = index in (0, RETAIL_CUSTOMERS)
        first_day = 0 if always or rng.random() < 0.75 else rng.randrange(30, n_days - 60)
        active = always or rng.random() > 0.06
        last_day = n_days - 1 if active else rng.randrange(min(first_day + 90, n_days - 60), n_days - 30)
        if wholesale:
            method = rng.choices(WHOLESALE_METHODS, WHOLESALE_METHOD_WEIGHTS)[0]
            discount = rng.choices((0, 5, 10), (0.5, 0.3, 0.2))[0]
        else:
            method = rng.choices(RETAIL_METHODS, RETAIL_METHOD_WEIGHTS)[0]
            discount = 0
        weight = rng.lognormvariate(0, 0.8)
        customers.append(
            _Customer(
                code=f"C{index + 1:04d}",
                name=name,
                wholesale=wholesale,
                region=region,
                email=_email(name, person),
                active=active,
                weight=weight,
                first_day=first_day,
                last_day=last_day,
                rep=rng.choice(REPS_BY_REGION[region]),
                storefront=HOME_STOREFRONT[region],
                method=method,
                discount_pct=discount,
                usual_share=WHOLESALE_USUAL_SHARE if wholesale else RETAIL_USUAL_SHARE,
                cases=rng.lognormvariate(math.log(3), 0.4) if wholesale else 0.0,
            )
        )
        # Wholesale customers buy a short list of staples; retail baskets are more varied.
        usual = _weighted_sample(rng, popularity, rng.randint(6, 12) if wholesale else rng.randint(8, 20))
        decay = 1.1 if wholesale else 0.8
        customers[-1].usual = usual
        customers[-1].usual_cum = _cumulative([1 / (rank + 1) ** decay for rank in range(len(usual))])
    for rep in REPS:
        mine = sorted((c for c in customers if c.wholesale and c.rep == rep), key=lambda c: -c.weight)
        for customer in mine[:KEY_ACCOUNTS_PER_REP]:
            customer.key_account = True
            customer.weight *= 1.6  # key accounts are looked after: they order more
    # A few large wholesale customers stop paying some months before today: the over-limit accounts.
    big = sorted(
        (c for c in customers if c.wholesale and c.active and c.first_day == 0), key=lambda c: -c.weight
    )
    for customer in rng.sample(big[:25], 4):
        customer.slow_from = n_days - 1 - rng.randint(150, 300)
    return customers


def _customer_names(rng: random.Random) -> list[tuple[str, bool, bool]]:
    """Distinct (name, wholesale, is a person): the retail customers first, then the wholesale ones."""
    people = [f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES]
    shops = [f"{kind} {last}" for kind in SHOP_KINDS for last in LAST_NAMES]
    shops += [f"{kind} {place}" for kind in SHOP_KINDS for place in PLACES]
    venues = [f"{kind} {last}" for kind in VENUE_KINDS for last in LAST_NAMES]
    venues += [f"{kind} {place}" for kind in VENUE_KINDS for place in PLACES]
    companies = [f"{last} {form}" for last in LAST_NAMES for form in COMPANY_FORMS]
    for pool in (people, shops, venues, companies):
        rng.shuffle(pool)
    seen: set[str] = set()

    def take(pool: Sequence[str], count: int) -> list[str]:
        out: list[str] = []
        for name in pool:
            if len(out) == count:
                break
            if name not in seen:
                seen.add(name)
                out.append(name)
        return out

    special_retail = take(SPECIAL_RETAIL, len(SPECIAL_RETAIL))
    special_wholesale = take(SPECIAL_WHOLESALE, len(SPECIAL_WHOLESALE))
    n_people = RETAIL_CUSTOMERS * 3 // 5  # the rest of retail are small shops
    n_companies = WHOLESALE_CUSTOMERS * 2 // 5  # the rest of wholesale are cafés, hotels, restaurants
    retail = [(n, False, True) for n in take(people, n_people)]
    shops_needed = RETAIL_CUSTOMERS - n_people - len(special_retail)
    retail += [(n, False, False) for n in special_retail + take(shops, shops_needed)]
    venues_needed = WHOLESALE_CUSTOMERS - n_companies - len(special_wholesale)
    wholesale_names = special_wholesale + take(venues, venues_needed) + take(companies, n_companies)
    wholesale = [(n, True, False) for n in wholesale_names]
    rng.shuffle(retail)
    rng.shuffle(wholesale)
    return retail + wholesale


def _email(name: str, person: bool) -> str:
    plain = name.translate(_NO_DECOMPOSITION)
    ascii_name = unicodedata.normalize("NFKD", plain).encode("ascii", "ignore").decode().lower()
    words = "".join(ch if ch.isalnum() else " " for ch in ascii_name).split()
    if person:
        return f"{'.'.join(words)}@example.com"
    return f"orders@{'-'.join(words)}.example.com"


_NO_DECOMPOSITION = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss", "æ": "ae", "Æ": "AE"})


def _weighted_sample(rng: random.Random, weights: list[float], count: int) -> list[int]:
    """`count` distinct indexes drawn with probability proportional to weight."""
    cum = _cumulative(weights)
    chosen: list[int] = []
    while len(chosen) < count:
        index = bisect_right(cum, rng.random() * cum[-1])
        if index not in chosen:
            chosen.append(index)
    return chosen


def _cumulative(weights: Sequence[float]) -> list[float]:
    out: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def _order_skeleton(
    rng: random.Random, calendar: _Calendar, customers: list[_Customer], rows: int
) -> tuple[array[int], array[int], array[int]]:
    """Day, customer and line count of every order, in date order, with exactly `rows` lines in all."""
    retail_mean = sum(n * w for n, w in enumerate(RETAIL_LINES, 1)) / sum(RETAIL_LINES)
    wholesale_mean = sum(n * w for n, w in enumerate(WHOLESALE_LINES, 1)) / sum(WHOLESALE_LINES)
    mean = (1 - WHOLESALE_ORDER_SHARE) * retail_mean + WHOLESALE_ORDER_SHARE * wholesale_mean
    n_orders = min(rows, max(-(-rows // 6), round(rows / mean)))
    n_wholesale = round(n_orders * WHOLESALE_ORDER_SHARE)

    retail_weights: list[float] = []
    wholesale_weights: list[float] = []
    for i, day in enumerate(calendar.days):
        trend = GROWTH_PER_YEAR ** (i / 365.25) * rng.lognormvariate(0, 0.12)
        closed = 0.05 if (day.month, day.day) in CLOSED_DAYS else 1.0
        retail_weights.append(RETAIL_SEASON[day.month - 1] * RETAIL_WEEKDAY[day.weekday()] * trend * closed)
        wholesale_weights.append(
            WHOLESALE_SEASON[day.month - 1] * WHOLESALE_WEEKDAY[day.weekday()] * trend * closed
        )
    retail_counts = _allocate(retail_weights, n_orders - n_wholesale)
    wholesale_counts = _allocate(wholesale_weights, n_wholesale)

    streams = []
    for wholesale, lines_weights in ((False, RETAIL_LINES), (True, WHOLESALE_LINES)):
        members = [i for i, c in enumerate(customers) if c.wholesale == wholesale]
        streams.append(
            (members, _cumulative([customers[i].weight for i in members]), _cumulative(lines_weights))
        )

    order_day: array[int] = array("i")
    order_customer: array[int] = array("i")
    order_lines: array[int] = array("b")
    rand = rng.random
    for day_index in range(len(calendar.days)):
        for (members, cum, lines_cum), count in zip(
            streams, (retail_counts[day_index], wholesale_counts[day_index]), strict=True
        ):
            for _ in range(count):
                customer = members[0]  # always active: the fallback when the draws keep missing
                for _attempt in range(20):
                    candidate = members[bisect_right(cum, rand() * cum[-1])]
                    c = customers[candidate]
                    if c.first_day <= day_index <= c.last_day:
                        customer = candidate
                        break
                order_day.append(day_index)
                order_customer.append(customer)
                order_lines.append(bisect_right(lines_cum, rand() * lines_cum[-1]) + 1)

    difference = rows - sum(order_lines)
    while difference:
        i = int(rand() * len(order_lines))
        if difference > 0 and order_lines[i] < 6:
            order_lines[i] += 1
            difference -= 1
        elif difference < 0 and order_lines[i] > 1:
            order_lines[i] -= 1
            difference += 1
    return order_day, order_customer, order_lines


def _allocate(weights: list[float], total: int) -> list[int]:
    """Split `total` into integer counts proportional to `weights` (systematic rounding, exact sum)."""
    scale = total / sum(weights)
    counts: list[int] = []
    acc = 0.0
    previous = 0
    for w in weights:
        acc += w * scale
        current = min(total, math.floor(acc + 0.5))
        counts.append(current - previous)
        previous = current
    counts[-1] += total - previous
    return counts


# --- writing ------------------------------------------------------------------------------------


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def _claim_business(session: Session, code: str) -> int:
    business = business_by_code(session, code)
    if business is None:
        business = Business(code=code, name=DEMO_NAME, currency="EUR", timezone="Europe/Berlin")
        session.add(business)
        session.flush()
    else:
        for column in (Sale.business_id, Customer.business_id, Product.business_id, Storefront.business_id):
            if session.scalar(select(exists().where(column == business.id))):
                raise ValueError(
                    f"Business {code!r} already has data; demo data is only loaded into an empty business"
                )
    return business.id


class _BulkWriter:
    """Fast inserts of plain tuples with ids we assign, inside the session's transaction.

    SQLite: the DBAPI cursor's executemany (3x faster than Core executemany at 1M lines). PostgreSQL with
    psycopg: COPY (2x faster than executemany). Anything else: Core executemany.
    """

    TABLES = (Sale, SaleLine, Payment)

    def __init__(self, session: Session, business_id: int) -> None:
        self.connection = session.connection()
        self.dialect = self.connection.dialect.name
        self.driver = self.connection.dialect.driver
        self.next_id: dict[str, int] = {}
        if self.dialect == "sqlite":
            # Take SQLite's write lock now, before reading max(id), so no other writer can slip in.
            self.connection.execute(
                update(_table(Business))
                .where(_table(Business).c.id == business_id)
                .values(data_version=_table(Business).c.data_version)
            )
            for model in self.TABLES:
                table = _table(model)
                self.next_id[table.name] = (self.connection.scalar(select(func.max(table.c.id))) or 0) + 1
        elif self.dialect == "postgresql":
            # Other writers wait until we commit; ids are reserved past both max(id) and the sequence.
            self.connection.execute(text("LOCK TABLE sales, sale_lines, payments IN EXCLUSIVE MODE"))
            for model in self.TABLES:
                table = _table(model)
                from_sequence = self.connection.scalar(
                    text("SELECT nextval(pg_get_serial_sequence(:t, 'id'))"), {"t": table.name}
                )
                from_table = (self.connection.scalar(select(func.max(table.c.id))) or 0) + 1
                self.next_id[table.name] = max(int(from_sequence or 1), from_table)
        else:
            for model in self.TABLES:
                table = _table(model)
                self.next_id[table.name] = (self.connection.scalar(select(func.max(table.c.id))) or 0) + 1

    @property
    def dates_as_text(self) -> bool:
        """SQLite gets dates and datetimes as the text SQLAlchemy would have stored."""
        return self.dialect == "sqlite"

    def insert(self, table: Table, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        columns = [c.name for c in table.columns]
        if self.dialect == "sqlite":
            quote = self.connection.dialect.identifier_preparer.quote
            sql = (
                f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})"
            )
            cursor = self.connection.connection.cursor()
            try:
                cursor.executemany(sql, rows)
            finally:
                cursor.close()
        elif self.dialect == "postgresql" and self.driver == "psycopg":
            from psycopg import sql as pgsql

            copy_sql = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
                pgsql.Identifier(table.name), pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns)
            )
            raw = self.connection.connection.dbapi_connection
            with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row(row)
        else:
            self.connection.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])

    def finish_ids(self) -> None:
        """Move PostgreSQL's sequences past the ids we assigned, so later ORM inserts do not collide."""
        if self.dialect != "postgresql":
            return
        for model in self.TABLES:
            table = _table(model)
            last = self.connection.scalar(select(func.max(table.c.id)))
            if last:
                self.connection.execute(
                    text("SELECT setval(pg_get_serial_sequence(:t, 'id'), :v)"), {"t": table.name, "v": last}
                )


def _insert_customers(session: Session, business_id: int, customers: list[_Customer]) -> list[int]:
    rows = [
        {
            "business_id": business_id,
            "customer_code": c.code,
            "name": c.name,
            "customer_type": "wholesale" if c.wholesale else "retail",
            "region": c.region,
            "credit_limit_micros": 0,  # set from the generated sales by _update_credit_limits
            "email": c.email,
            "active": c.active,
        }
        for c in customers
    ]
    session.execute(insert(_table(Customer)), rows)
    found = session.execute(
        select(Customer.customer_code, Customer.id).where(Customer.business_id == business_id)
    )
    ids = {code: id_ for code, id_ in found}
    return [ids[c.code] for c in customers]


def _insert_products(session: Session, business_id: int, products: list[_Product]) -> list[int]:
    rows = [
        {
            "business_id": business_id,
            "sku": p.sku,
            "name": p.name,
            "category": p.category,
            "unit_cost_micros": p.cost_cents * 10_000,
            "unit_price_micros": p.price_cents * 10_000,
            "reorder_level": p.reorder_level,
        }
        for p in products
    ]
    session.execute(insert(_table(Product)), rows)
    found = session.execute(select(Product.sku, Product.id).where(Product.business_id == business_id))
    ids = {sku: id_ for sku, id_ in found}
    return [ids[p.sku] for p in products]


def _insert_storefronts(session: Session, business_id: int) -> list[int]:
    rows = [{"business_id": business_id, "code": c, "name": n, "region": r} for c, n, r in STOREFRONTS]
    session.execute(insert(_table(Storefront)), rows)
    found = session.execute(
        select(Storefront.code, Storefront.id).where(Storefront.business_id == business_id)
    )
    ids = {code: id_ for code, id_ in found}
    return [ids[code] for code, _, _ in STOREFRONTS]


class _SalesWriter:
    """Turns the order skeleton into sales, lines and payments, and keeps the totals later steps need."""

    def __init__(
        self,
        rng: random.Random,
        writer: _BulkWriter,
        business_id: int,
        calendar: _Calendar,
        customers: list[_Customer],
        products: list[_Product],
        customer_ids: list[int],
        product_ids: list[int],
        storefront_ids: list[int],
    ) -> None:
        self.rng = rng
        self.writer = writer
        self.business_id = business_id
        self.calendar = calendar
        self.customers = customers
        self.products = products
        self.customer_ids = customer_ids
        self.product_ids = product_ids
        self.storefront_ids = storefront_ids
        self.line_count = 0
        self.payment_count = 0
        self.sale_number = 0
        self.payment_number = 0
        n_months = len(calendar.months)
        # Completed quantity per month of the key accounts' top products: the forecasts' input.
        self.actuals: list[dict[int, list[float]] | None] = [
            {p: [0.0] * n_months for p in c.usual[:FORECAST_PRODUCTS]} if c.key_account else None
            for c in customers
        ]
        self.outstanding = [0] * len(customers)  # micros, as of today, completed sales only
        self.spend_last_year = [0] * len(customers)  # completed net micros in the last 365 days
        self.product_cum = _cumulative([p.popularity for p in products])

    def write(
        self, order_day: array[int], order_customer: array[int], order_lines: array[int], start: int, end: int
    ) -> None:
        rng = self.rng
        rand = rng.random
        writer = self.writer
        bid = self.business_id
        customers = self.customers
        products = self.products
        product_ids = self.product_ids
        customer_ids = self.customer_ids
        storefront_ids = self.storefront_ids
        product_cum = self.product_cum
        product_total = product_cum[-1]
        n_products = len(products)
        days = self.calendar.day_text if writer.dates_as_text else self.calendar.days
        month_of_day = self.calendar.month_of_day
        last_day = len(days) - 1
        year_ago = last_day - 364
        text_dates = writer.dates_as_text
        price_of = [p.price_cents for p in products]
        cost_of = [p.cost_cents for p in products]
        case_of = [p.case_size for p in products]
        sale_id = writer.next_id["sales"]
        line_id = writer.next_id["sale_lines"]
        payment_id = writer.next_id["payments"]
        sales: list[tuple[Any, ...]] = []
        lines: list[tuple[Any, ...]] = []
        payments: list[tuple[Any, ...]] = []

        def pay(day: int, amount: int, method: str, minute: int) -> int:
            """Record a payment unless it would fall after today; the amount recorded (0 or amount)."""
            nonlocal payment_id
            if day > last_day or amount <= 0:
                return 0
            self.payment_number += 1
            if text_dates:
                paid_at: Any = f"{days[day]} {minute // 60:02d}:{minute % 60:02d}:00.000000"
            else:
                paid_at = dt.datetime.combine(self.calendar.days[day], dt.time(minute // 60, minute % 60))
            payments.append(
                (payment_id, bid, f"PAY-{self.payment_number:07d}", sale_id, paid_at, amount, method)
            )
            payment_id += 1
            return amount

        for i in range(start, end):
            d = order_day[i]
            ci = order_customer[i]
            c = customers[ci]
            wholesale = c.wholesale
            r = rand()
            status = "completed" if r < 0.93 else "draft" if r < 0.96 else "void" if r < 0.98 else "refunded"
            storefront = c.storefront if rand() < 0.85 else int(rand() * 3)
            rep = c.rep if rand() < 0.9 else REPS[int(rand() * 8)]
            usual = c.usual
            usual_cum = c.usual_cum
            usual_total = usual_cum[-1]
            usual_share = c.usual_share
            cases = c.cases
            tracked = self.actuals[ci] if status == "completed" else None
            month = month_of_day[d]
            picked: list[int] = []
            net_total = 0
            cost_total = 0
            for _ in range(order_lines[i]):
                p = -1
                for _attempt in range(30):
                    if rand() < usual_share:
                        candidate = usual[bisect_right(usual_cum, rand() * usual_total)]
                    else:
                        candidate = bisect_right(product_cum, rand() * product_total)
                    if candidate not in picked:
                        p = candidate
                        break
                if p < 0:
                    p = next(x for x in range(n_products) if x not in picked)
                picked.append(p)
                price = price_of[p]
                if wholesale:
                    quantity = case_of[p] * max(1, int(cases * (0.5 + rand()) + 0.5))
                    if rand() < 0.08:  # negotiated price
                        price = round(price * (0.90 + 0.15 * rand()))
                    discount = c.discount_pct if rand() >= 0.07 else (5, 10, 15)[int(rand() * 3)]
                else:
                    quantity = RETAIL_QTY[int(rand() * 15)]
                    if rand() < 0.02:
                        price = round(price * (0.95 + 0.05 * rand()))
                    r = rand()
                    discount = 0 if r < 0.92 else 5 if r < 0.97 else 10
                # Prices are whole cents and discounts whole percent, so the line net is exact in micros.
                net = quantity * price * (100 - discount) * 100
                cost = quantity * cost_of[p] * 10_000
                net_total += net
                cost_total += cost
                lines.append(
                    (
                        line_id,
                        bid,
                        sale_id,
                        len(picked),  # line_no: 1, 2, ... in the order (a product appears once per order)
                        product_ids[p],
                        quantity,
                        price * 10_000,
                        cost_of[p] * 10_000,
                        DISCOUNTS[discount],
                        net,
                        cost,
                    )
                )
                line_id += 1
                if tracked is not None:
                    history = tracked.get(p)
                    if history is not None:
                        history[month] += quantity

            self.sale_number += 1
            sales.append(
                (
                    sale_id,
                    bid,
                    f"SO-{self.sale_number:07d}",
                    days[d],
                    customer_ids[ci],
                    storefront_ids[storefront],
                    rep,
                    status,
                    net_total,
                    cost_total,
                )
            )

            # Payments. Retail pays at the till; wholesale on terms, sometimes late, partly or not at all.
            method = (
                c.method
                if rand() < 0.85
                else (WHOLESALE_METHODS if wholesale else RETAIL_METHODS)[
                    int(rand() * (4 if wholesale else 3))
                ]
            )
            minute = 480 + int(rand() * 660)
            terms = d + (int(rand() * 4) if rand() < 0.4 else 7 + int(rand() * 24)) if wholesale else d
            paid = 0
            if status == "completed":
                r = rand()
                if c.slow_from is not None and d >= c.slow_from:
                    if r < 0.25:
                        paid += pay(terms, _cents(net_total * (10 + int(rand() * 21)) // 100), method, minute)
                elif wholesale:
                    if r < 0.07:  # part now, the rest later or never
                        part = _cents(net_total * (40 + int(rand() * 41)) // 100)
                        paid += pay(terms, part, method, minute)
                        if rand() < 0.85:
                            paid += pay(terms + 20 + int(rand() * 70), net_total - part, method, minute)
                    elif r < 0.10:  # damaged goods credited, the rest paid
                        credit = _cents(net_total * (5 + int(rand() * 16)) // 100)
                        paid += pay(d + 5 + int(rand() * 20), credit, "credit_note", minute)
                        paid += pay(terms, net_total - credit, method, minute)
                    elif r < 0.22:  # late: 30 to 120 days
                        paid += pay(d + 30 + int(rand() * 91), net_total, method, minute)
                    else:
                        paid += pay(terms, net_total, method, minute)
                elif r < 0.03:  # deposit now, the rest later (usually)
                    part = _cents(net_total * (30 + int(rand() * 21)) // 100)
                    paid += pay(d, part, method, minute)
                    if rand() < 0.85:
                        paid += pay(d + 7 + int(rand() * 39), net_total - part, method, minute)
                elif r < 0.05:  # on account, paid late
                    paid += pay(d + 30 + int(rand() * 91), net_total, method, minute)
                elif r < 0.06:  # part paid with a store-credit voucher
                    credit = _cents(net_total * (10 + int(rand() * 41)) // 100)
                    paid += pay(d, credit, "credit_note", minute)
                    paid += pay(d, net_total - credit, method, minute)
                else:
                    paid += pay(d, net_total, method, minute)
                self.outstanding[ci] += max(0, net_total - paid)
                if d >= year_ago:
                    self.spend_last_year[ci] += net_total
            elif status == "refunded":
                pay(terms, net_total, method, minute)
                if rand() < 0.5:
                    pay(terms + 2 + int(rand() * 29), net_total, "credit_note", minute)
            elif status == "void" and rand() < 0.3:  # taken at the till, then voided: must not count
                pay(d, net_total, method, minute)
            sale_id += 1

        writer.insert(_table(Sale), sales)
        writer.insert(_table(SaleLine), lines)
        writer.insert(_table(Payment), payments)
        writer.next_id.update(sales=sale_id, sale_lines=line_id, payments=payment_id)
        self.line_count += len(lines)
        self.payment_count += len(payments)


def _cents(micros: int) -> int:
    return micros // 10_000 * 10_000


def _update_credit_limits(
    session: Session,
    rng: random.Random,
    customers: list[_Customer],
    customer_ids: list[int],
    sales: _SalesWriter,
) -> None:
    """Credit limits sized to each customer's trade; the slow payers end up over theirs."""
    params: list[dict[str, int]] = []
    for index, c in enumerate(customers):
        monthly = sales.spend_last_year[index] / 12
        outstanding = sales.outstanding[index]
        if c.slow_from is not None and outstanding >= 200_000_000:
            step = 1000 if outstanding >= 10_000_000_000 else 100
            limit = _round_to(outstanding * rng.uniform(0.5, 0.8), step, up=False)
        elif c.wholesale:
            need = max(2_000_000_000, monthly * rng.uniform(2, 4), outstanding * rng.uniform(1.3, 2.0))
            limit = _round_to(need, 1000 if need >= 10_000_000_000 else 500, up=True)
        else:
            need = max(
                rng.choice((250, 500, 1000)) * 1_000_000,
                monthly * rng.uniform(1.5, 3),
                outstanding * rng.uniform(1.5, 2.5),
            )
            limit = _round_to(need, 100, up=True)
        params.append({"b_id": customer_ids[index], "b_limit": limit})
    customers_table = _table(Customer)
    session.execute(
        update(customers_table)
        .where(customers_table.c.id == bindparam("b_id"))
        .values(credit_limit_micros=bindparam("b_limit")),
        params,
    )


def _round_to(micros: float, step_euros: int, *, up: bool) -> int:
    step = step_euros * 1_000_000
    units = math.ceil(micros / step) if up else math.floor(micros / step)
    return max(units, 1) * step


def _insert_forecasts(
    session: Session,
    rng: random.Random,
    business_id: int,
    calendar: _Calendar,
    customers: list[_Customer],
    products: list[_Product],
    sales: _SalesWriter,
    customer_ids: list[int],
    product_ids: list[int],
) -> int:
    """Monthly forecasts for the key accounts' top products, as their reps would submit them.

    A rep projects the last three months' deseasonalised level forward, biased by the rep's habit and
    noise; some reps are late, some skip a customer in a cycle, a few revise a figure days later.
    """
    months = calendar.months
    first_day_of_month = [0] * len(months)
    for day in range(len(calendar.days) - 1, -1, -1):
        first_day_of_month[calendar.month_of_day[day]] = day
    cutoff = dt.datetime.combine(calendar.days[-1], dt.time())  # only submissions made before today
    factor = [
        WHOLESALE_SEASON[m.month - 1]
        * GROWTH_PER_YEAR ** (first_day_of_month[i] / 365.25)
        * calendar.coverage[i]
        for i, m in enumerate(months)
    ]
    noise_sigma = 0.3
    rows: list[dict[str, Any]] = []
    first_cycle = 0 if calendar.days[0].day == 1 else 1
    for k in range(first_cycle, len(months)):
        cycle_start = dt.datetime.combine(months[k], dt.time())
        cycle = months[k].strftime("%Y-%m")
        batch_time: dict[str, dt.datetime] = {}
        for rep in REPS:
            if rng.random() < REP_LATE[rep]:
                offset = dt.timedelta(days=rng.randint(1, 6), hours=rng.randint(8, 17))
            else:
                offset = -dt.timedelta(days=rng.randint(1, 8)) + dt.timedelta(hours=rng.randint(8, 17))
            batch_time[rep] = cycle_start + offset
        for ci, c in enumerate(customers):
            tracked = sales.actuals[ci]
            if tracked is None or not c.first_day <= first_day_of_month[k] <= c.last_day:
                continue
            history = [j for j in range(max(0, k - 3), k) if c.first_day <= first_day_of_month[j]]
            if not history or rng.random() < 0.04:  # new customer not yet planned, or the rep skipped it
                continue
            rep = c.rep
            for p in c.usual[:FORECAST_PRODUCTS]:
                actual = tracked[p]
                level = sum(actual[j] / factor[j] for j in history) / len(history)
                expected = level * factor[k] / calendar.coverage[k]  # a whole month, even the current one
                noise = rng.lognormvariate(-(noise_sigma**2) / 2, noise_sigma)
                quantity = max(1, round(expected * REP_BIAS[rep] * noise))
                submitted = batch_time[rep] + dt.timedelta(minutes=len(rows) % 240)
                if submitted < cutoff:
                    rows.append(
                        _forecast_row(
                            business_id, cycle, customer_ids[ci], product_ids[p], rep, quantity, submitted
                        )
                    )
                if rng.random() < 0.03:  # a revised figure a few days later; the latest counts
                    revised = max(1, round(quantity * rng.uniform(0.8, 1.2)))
                    resubmitted = submitted + dt.timedelta(
                        days=rng.randint(1, 5), minutes=rng.randint(1, 600)
                    )
                    if resubmitted < cutoff:
                        rows.append(
                            _forecast_row(
                                business_id,
                                cycle,
                                customer_ids[ci],
                                product_ids[p],
                                rep,
                                revised,
                                resubmitted,
                            )
                        )
    if rows:
        session.execute(insert(_table(Forecast)), rows)
    return len(rows)


def _forecast_row(
    business_id: int, cycle: str, customer_id: int, product_id: int, rep: str, quantity: int, at: dt.datetime
) -> dict[str, Any]:
    return {
        "business_id": business_id,
        "cycle": cycle,
        "customer_id": customer_id,
        "product_id": product_id,
        "sales_rep": rep,
        "quantity": quantity,
        "submitted_at": at,
    }


def _insert_inventory(
    session: Session,
    rng: random.Random,
    business_id: int,
    today: dt.date,
    products: list[_Product],
    product_ids: list[int],
    storefront_ids: list[int],
) -> int:
    """Stock of every product at every storefront as of today: mostly healthy, some low, a few out."""
    rows: list[dict[str, Any]] = []
    for storefront_id, size in zip(storefront_ids, (1.0, 1.4, 0.8), strict=True):
        for p, product in enumerate(products):
            reorder = product.reorder_level
            r = rng.random()
            if r < 0.05:
                quantity = 0
            elif r < 0.15:
                quantity = rng.randint(1, reorder)
            else:
                quantity = reorder + 1 + int(rng.random() * reorder * 3 * size)
            rows.append(
                {
                    "business_id": business_id,
                    "storefront_id": storefront_id,
                    "product_id": product_ids[p],
                    "quantity": quantity,
                    "as_of": today,
                }
            )
    session.execute(insert(_table(InventoryLevel)), rows)
    return len(rows)


def _audit_users(session: Session, business_id: int) -> list[tuple[str, str]]:
    """(username, role) of the users the demo's audit events name: the business's own active users,
    else the ones `accounts.users.ensure_demo_users` will create (the role as the name, or
    `{role}-{business code}` when another business has that username)."""
    own = session.execute(
        select(User.username, User.role).where(User.business_id == business_id, User.active.is_(True))
    ).all()
    if own:
        return sorted((str(name), str(role)) for name, role in own)
    code = session.scalar(select(Business.code).where(Business.id == business_id))
    return [
        (role if user_by_username(session, role) is None else f"{role}-{code}", role) for role in DEMO_ROLES
    ]


def _insert_audit_events(
    session: Session, rng: random.Random, business_id: int, today: dt.date, users: Sequence[tuple[str, str]]
) -> int:
    """About 200 events over the last six months: logins, imports, exports and user changes, all by
    (and about) `users` ((username, role), the demo business's users); failed logins are theirs too."""
    hosts = {name: AUDIT_HOSTS.get(role, 40 + i) for i, (name, role) in enumerate(users)}
    admins = [name for name, role in users if role == "admin"] or [users[0][0]]
    others = [name for name, role in users if role != "admin"] or admins
    kinds = ("login", "logout", "login_failed", "export", "import", "user_change")
    kind_weights = (0.50, 0.12, 0.08, 0.17, 0.08, 0.05)
    count = 200
    moments = sorted(
        dt.datetime.combine(today - dt.timedelta(days=rng.randint(1, 180)), dt.time())
        + dt.timedelta(minutes=rng.randint(7 * 60, 19 * 60))
        for _ in range(count)
    )
    rows: list[dict[str, Any]] = []
    batch = 0
    for at in moments:
        user = rng.choice(list(hosts))
        ip = f"10.0.0.{hosts[user]}"
        kind = rng.choices(kinds, kind_weights)[0]
        entity, entity_id = "session", ""
        detail: dict[str, Any] = {}
        event_type = kind
        if kind == "login":
            detail = {"method": "password"}
        elif kind == "login_failed":
            detail = {"reason": "wrong_password", "attempt": rng.randint(1, 3)}
        elif kind == "export":
            report = rng.choice(AUDIT_REPORTS)
            entity, entity_id = "report", report
            detail = {
                "format": rng.choice(("csv", "xlsx", "pdf", "json")),
                "period": rng.choice(("last_month", "month_to_date", "last_7_days", "year_to_date")),
                "rows": rng.randint(5, 5000),
            }
        elif kind == "import":
            batch += 1
            imported = rng.choice(IMPORT_ENTITIES)
            rows_in_file = rng.randint(20, 3000)
            accepted = rng.random() < 0.85
            entity, entity_id = "import", str(batch)
            detail = {
                "entity": imported,
                "filename": f"{imported}_{at:%Y-%m-%d}.csv",
                "rows": rows_in_file,
                "status": "accepted" if accepted else "rejected",
            }
            if accepted:
                inserted = rng.randint(0, rows_in_file)
                detail |= {"inserted": inserted, "updated": rows_in_file - inserted}
            else:
                detail["errors"] = rng.randint(1, 12)
        else:
            user = rng.choice(admins)
            ip = f"10.0.0.{hosts[user]}"
            target = rng.choice(others)
            entity, entity_id = "user", target
            event_type, detail = rng.choice(
                (
                    ("user_added", {"role": dict(users).get(target, "staff")}),
                    ("role_changed", {"from": "staff", "to": dict(users).get(target, "staff")}),
                    ("email_changed", {"from": "", "to": f"{target}@example.com"}),
                    ("password_reset", {"by": user}),
                )
            )
        rows.append(
            {
                "business_id": business_id,
                "at": at,
                "user": user,
                "event_type": event_type,
                "entity": entity,
                "entity_id": entity_id,
                "detail": detail,
                "ip": ip,
            }
        )
    session.execute(insert(_table(AuditEvent)), rows)
    return len(rows)
