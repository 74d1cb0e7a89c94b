"""A seeded generator of realistic order histories, driven through the real command handlers.

``generate(lake, orders=N, days=D, seed=S)`` simulates a web shop for D days: customers
(many of them returning) fill and shrink carts, apply discount codes, fail and retry
payments, change addresses, get parcels shipped and delivered (sometimes late, sometimes
damaged), cancel, get refunds and write notes in varied natural language. Every event
goes through ``decide`` via ``handle_many`` (group commit), so the log holds only what
the Order rules accept.

Determinism: the log is driven by a simulated clock and a seeded event-id factory, and
every order draws from its own ``random.Random(f"{seed}/{index}")``, so the same
arguments on an empty lake give the same log, byte for byte (event ids, positions,
``recorded_at`` included). Command ids ``gen-<seed>-<order>-<step>`` make a repeated run
on the same lake append nothing.

Back-dating: some events are recorded later than they occurred (a carrier's delivery
scan uploaded days later, a phone call typed up the next morning, a payment webhook
that arrived late). Within one order the recording times never overtake each other, so
every stream's ``occurred_at`` is non-decreasing with its version: the fold in
``(occurred_at, version)`` order equals the fold in version order. See docs/cli.md.
"""

from __future__ import annotations

import heapq
import random
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from eventlog.decider import handle_many
from eventlog.envelope import utc
from eventlog.errors import InvalidInputError
from eventlog.log import EventLog
from eventlog.orders.commands import (
    AddCustomerNote,
    AddItem,
    ApplyDiscount,
    AuthorizePayment,
    CancelOrder,
    CapturePayment,
    CreateOrder,
    DeliverOrder,
    FailPayment,
    IssueRefund,
    OrderCommand,
    RemoveItem,
    ShipOrder,
    UpdateShippingAddress,
)
from eventlog.orders.decider import ORDER_DECIDER

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
MAX_ORDERS = 5_000_000
MAX_DAYS = 3_660
COMMIT_WINDOW_S = 3600.0  # commands due within one simulated hour share one commit
MAX_BATCH = 2000  # ... unless that many are waiting already
BACK_DATED_AFTER = timedelta(hours=2)  # recorded this much after occurring counts as back-dated

ProgressCallback = Callable[[float, int], None]
"""Called with (fraction of simulated time done, events written so far)."""


# --- the world: catalogue, regions, people ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Product:
    """A catalogue entry: sku, display name, price in euro cents, category."""

    sku: str
    name: str
    eur_cents: int
    category: str


# sku | name | price in euro cents | category | variants (sizes or colours)
_CATALOGUE_TABLE = """
APP-TEE|Organic Cotton T-Shirt|2499|apparel|S,M,L,XL
APP-SWT|Merino Wool Crew Sweater|8900|apparel|S,M,L,XL
APP-JKT|Waterproof Rain Jacket|12900|apparel|S,M,L
APP-JNS|Slim Fit Selvedge Jeans|9500|apparel|30,32,34,36
APP-SCK|Bamboo Socks 3-Pack|1499|apparel|39-42,43-46
SHO-RUN|Trail Running Shoes|11900|shoes|40,41,42,43,44
SHO-SNK|Canvas Sneakers|5900|shoes|38,39,40,41,42
SHO-BOOT|Leather Chelsea Boots|17900|shoes|41,42,43
HOM-MUG|Stoneware Coffee Mug|1800|home|
HOM-LMP|Brass Desk Lamp|6400|home|
HOM-THR|Linen Throw Blanket|5400|home|
HOM-PIL|Velvet Cushion Cover|2200|home|sage,rust,navy
HOM-CAN|Soy Wax Candle, Fig & Cedar|2600|home|
HOM-VAS|Hand-Blown Glass Vase|4900|home|
KIT-KNF|Chef's Knife 20 cm|7900|kitchen|
KIT-PAN|Cast Iron Skillet 26 cm|5900|kitchen|
KIT-GRD|Burr Coffee Grinder|14900|kitchen|
KIT-BTL|Stainless Steel Water Bottle 750 ml|2900|kitchen|black,sage
KIT-BRD|Olive Wood Cutting Board|3900|kitchen|
FOD-COF|Single-Origin Coffee Beans 1 kg|2800|food|
FOD-TEA|Loose Leaf Earl Grey Tea|1200|food|
FOD-CHO|Dark Chocolate Hazelnut Bar|450|food|
FOD-HNY|Raw Wildflower Honey|1100|food|
ELE-EAR|Wireless Noise-Cancelling Earbuds|17900|electronics|
ELE-SPK|Portable Bluetooth Speaker|8900|electronics|
ELE-CHG|65 W USB-C Charger|3900|electronics|
ELE-KBD|Mechanical Keyboard|12900|electronics|
ELE-LGT|Smart LED Bulb 2-Pack|2900|electronics|
TOY-PUZ|1000-Piece Jigsaw Puzzle|2400|toys|
TOY-BLK|Wooden Building Blocks|3900|toys|
TOY-TED|Plush Teddy Bear|2900|toys|
BTY-SRM|Hyaluronic Face Serum|3400|beauty|
BTY-SHP|Solid Shampoo Bar|1300|beauty|
BTY-HND|Hand Cream Gift Set|2700|beauty|
SPT-MAT|Cork Yoga Mat|6900|sports|
SPT-BND|Resistance Band Set|2400|sports|
SPT-BAG|Rolltop Cycling Backpack|9900|sports|
BOK-CKB|Seasonal Vegetarian Cookbook|3200|books|
BOK-NOV|Hardback Novel, Signed Edition|2600|books|
OUT-TNT|Two-Person Hiking Tent|24900|outdoor|
"""


def _catalogue() -> tuple[Product, ...]:
    products = []
    for line in _CATALOGUE_TABLE.strip().splitlines():
        sku, name, cents, category, variants = line.split("|")
        if not variants:
            products.append(Product(sku, name, int(cents), category))
        for v in variants.split(",") if variants else ():
            label = f"size {v}" if category in {"apparel", "shoes"} else v
            products.append(
                Product(f"{sku}-{v.upper()}", f"{name} ({label})", int(cents), category)
            )
    return tuple(products)


CATALOGUE = _catalogue()
RATES = {"EUR": 1.0, "USD": 1.09, "GBP": 0.86}


def price_in(product: Product, currency: str) -> int:
    """The product's unit price in minor units of a currency, shop-style (ending in 99)."""
    converted = product.eur_cents * RATES[currency]
    if product.eur_cents < 1000:
        return max(99, round(converted))
    return max(1, round(converted / 100)) * 100 - 1


@dataclass(frozen=True, slots=True)
class Region:
    """A country the shop sells to: currency, cities with postal codes, streets, carriers."""

    country: str
    currency: str
    weight: int
    cities: tuple[tuple[str, str], ...]
    streets: tuple[str, ...]
    carriers: tuple[str, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]


# country | currency | weight | city=postal code;... | streets | carriers | first names | last names
_REGION_TABLE = """
DE|EUR|18|Berlin=10115;Munich=80331;Hamburg=20095;Cologne=50667;Leipzig=04109|Hauptstraße;Lindenallee;Bahnhofstraße;Gartenweg;Schillerstraße|DHL;DPD;Hermes|Lena;Jonas;Mia;Felix;Hannah;Lukas;Sophie;Max|Müller;Schmidt;Schneider;Fischer;Weber;Becker
FR|EUR|12|Paris=75011;Lyon=69002;Marseille=13001;Toulouse=31000;Nantes=44000|Rue de la Paix;Avenue Victor Hugo;Rue des Lilas;Boulevard Voltaire|Colissimo;Chronopost;DPD|Camille;Louis;Chloé;Hugo;Manon;Jules;Léa|Martin;Bernard;Dubois;Moreau;Laurent;Lefèvre
NL|EUR|7|Amsterdam=1011 AB;Rotterdam=3011 AD;Utrecht=3511 AA;Eindhoven=5611 AB|Keizersgracht;Dorpsstraat;Kerkstraat;Molenweg|PostNL;DHL|Sanne;Daan;Emma;Bram;Julia;Sem|de Jong;Jansen;de Vries;van Dijk;Bakker
ES|EUR|6|Madrid=28004;Barcelona=08002;Valencia=46001;Seville=41001|Calle Mayor;Gran Vía;Calle del Sol;Avenida de la Constitución|Correos;SEUR|Lucía;Pablo;Sofía;Javier;Marta;Diego|García;Fernández;López;Martínez;Sánchez
IT|EUR|6|Milan=20121;Rome=00184;Turin=10121;Bologna=40121|Via Roma;Corso Italia;Via Garibaldi;Via Dante|BRT;Poste Italiane|Giulia;Luca;Francesca;Marco;Chiara;Matteo|Rossi;Russo;Ferrari;Esposito;Bianchi
IE|EUR|3|Dublin=D02 X285;Cork=T12 RC3P;Galway=H91 E2K3|Main Street;Church Road;Harbour View|An Post;DPD|Aoife;Cian;Niamh;Seán;Róisín|Murphy;Kelly;O'Sullivan;Walsh;Byrne
GB|GBP|20|London=SW1A 1AA;Manchester=M1 1AE;Edinburgh=EH1 1YZ;Bristol=BS1 4DJ;Leeds=LS1 4AP|High Street;Station Road;Victoria Road;Church Lane;Park Avenue|Royal Mail;DPD;Evri|Olivia;Oliver;Amelia;George;Isla;Harry;Freya|Smith;Jones;Taylor;Brown;Wilson;Evans
US|USD|28|New York=10001;Chicago=60601;Austin=78701;Seattle=98101;Boston=02108;Denver=80202|Maple Avenue;Oak Street;Elm Street;Sunset Boulevard;Washington Street|UPS;USPS;FedEx|Emily;James;Ava;Michael;Madison;Ethan;Grace|Johnson;Williams;Miller;Davis;Garcia;Rodriguez
"""


def _regions() -> tuple[Region, ...]:
    out = []
    for line in _REGION_TABLE.strip().splitlines():
        country, currency, weight, cities, streets, carriers, firsts, lasts = line.split("|")
        out.append(
            Region(
                country,
                currency,
                int(weight),
                tuple((c.split("=")[0], c.split("=")[1]) for c in cities.split(";")),
                tuple(streets.split(";")),
                tuple(carriers.split(";")),
                tuple(firsts.split(";")),
                tuple(lasts.split(";")),
            )
        )
    return tuple(out)


REGIONS = _regions()
CHANNELS = (("web", 55), ("mobile_app", 30), ("marketplace", 10), ("phone", 5))
METHODS = {
    "default": ("card", "card", "card", "paypal", "apple_pay", "google_pay"),
    "NL": ("ideal", "card", "paypal"),
    "DE": ("card", "paypal", "klarna", "sepa_debit"),
    "US": ("card", "card", "apple_pay", "paypal"),
}
EMAIL_DOMAINS = ("example.com", "mail.example.org", "inbox.example.net", "post.example.de")
SUPPORT_AGENTS = ("Anna", "Tomás", "Priya", "Kofi", "Mei", "Lars")


@dataclass(frozen=True, slots=True)
class Customer:
    """A shopper: id, name, e-mail, home address and region."""

    customer_id: str
    name: str
    first_name: str
    email: str
    region: Region
    street: str
    city: str
    postal_code: str
    channel: str


def _weighted(
    rng: random.Random, pairs: tuple[tuple[Any, int], ...] | list[tuple[Any, int]]
) -> Any:
    total = sum(w for _, w in pairs)
    x = rng.random() * total
    for value, w in pairs:
        x -= w
        if x < 0:
            return value
    return pairs[-1][0]


def _ascii(text: str) -> str:
    return (
        unicodedata.normalize("NFKD", text)
        .encode("ascii", "ignore")
        .decode()
        .replace("'", "")
        .replace(" ", "")
    )


def _make_customers(rng: random.Random, count: int) -> list[Customer]:
    regions = [(r, r.weight) for r in REGIONS]
    seen: set[str] = set()
    out = []
    for _ in range(count):
        cid = f"cus-{rng.getrandbits(40):010x}"
        while cid in seen:
            cid = f"cus-{rng.getrandbits(40):010x}"
        seen.add(cid)
        region: Region = _weighted(rng, regions)
        first, last = rng.choice(region.first_names), rng.choice(region.last_names)
        city, postal = rng.choice(region.cities)
        email = f"{_ascii(first).lower()}.{_ascii(last).lower()}{rng.randrange(1, 999)}@{rng.choice(EMAIL_DOMAINS)}"
        street = f"{rng.choice(region.streets)} {rng.randrange(1, 180)}"
        out.append(
            Customer(
                cid,
                f"{first} {last}",
                first,
                email,
                region,
                street,
                city,
                postal,
                _weighted(rng, CHANNELS),
            )
        )
    return out


def tracking_number(rng: random.Random, carrier: str) -> str:
    """A tracking number in the carrier's usual shape."""

    def digits(n: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(n))

    def alnum(n: int) -> str:
        return "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(n))

    match carrier:
        case "UPS":
            return "1Z" + alnum(16)
        case "USPS":
            return "9400" + digits(18)
        case "FedEx":
            return digits(12)
        case "DHL":
            return "JD" + digits(18)
        case "Royal Mail" | "An Post" | "Correos" | "Poste Italiane" | "Colissimo":
            return (
                alnum(2)
                + digits(9)
                + {
                    "Royal Mail": "GB",
                    "An Post": "IE",
                    "Correos": "ES",
                    "Poste Italiane": "IT",
                    "Colissimo": "FR",
                }[carrier]
            )
        case "PostNL":
            return "3S" + alnum(13)
        case _:
            return digits(14)


# --- customer notes: many themes, many phrasings ---------------------------------------------

NOTES: dict[str, tuple[str, ...]] = {
    "late": (
        "My parcel was supposed to arrive on {weekday} and it still isn't here.",
        "Tracking with {carrier} hasn't moved in {n} days. Is the order lost?",
        "Still waiting for this order, it's been {n} days since it shipped.",
        "Any news on my delivery? {carrier} has said 'in transit' since {weekday}.",
        "The estimated delivery date has passed and nothing has arrived in {city}.",
        "where is my package?? ordered ages ago and still nothing",
        "I needed the {product} for this weekend; the delivery is now {n} days late.",
        "Courier keeps postponing the delivery. Very frustrating.",
    ),
    "damaged": (
        "The box arrived completely soaked and the {product} inside is ruined.",
        "Parcel was crushed on one side and the {product} is dented.",
        "The package looked like it had been dropped from a height, the {product} is cracked.",
        "Box was torn open and taped back together; the {product} is scratched.",
        "Water damage all over the parcel, it must have been left out in the rain.",
        "The {product} arrived broken in several pieces. Packaging was far too thin.",
        "Outer carton was squashed flat, and the {product} has a big dent.",
        "Everything was wet when the courier handed it over; the {product} is unusable.",
    ),
    "gift": (
        "Could you gift-wrap the {product}? It's a birthday present for my {relation}.",
        "This is a gift, please don't put the invoice or prices in the box.",
        "Please add a small card saying 'Happy anniversary, love {first}'.",
        "Would it be possible to wrap everything separately? They are gifts for {count} people.",
        "It's a surprise for my {relation}, please use plain packaging without the shop logo.",
        "Gift wrap in red paper if you have it, it's for Christmas.",
    ),
    "wrong_size": (
        "The {product} is too small, I need one size up.",
        "I ordered a medium but received a large.",
        "The {product} fits much tighter than the size chart suggests.",
        "Sizing is way off; the {product} is huge on me. Can I exchange it?",
        "Wrong size delivered, the label doesn't match what I ordered.",
        "Unfortunately the {product} doesn't fit, the sleeves are far too short.",
    ),
    "address": (
        "I made a typo in my street name, it should be {street}.",
        "I'm moving next week, please ship to {street}, {city} instead.",
        "The courier says my address can't be found. The entrance is round the back on {street}.",
        "Please change the delivery address to my office, I'm never home during the day.",
        "The postcode on my order is wrong, the correct one is {postal}.",
        "My flat number is missing from the address: it's flat {n}.",
    ),
    "praise": (
        "Arrived a day early and beautifully packed, thank you!",
        "Great quality, the {product} is even nicer than in the photos.",
        "Fast delivery to {city}, very happy with the service.",
        "Love the {product}! Will definitely order again.",
        "Excellent customer service, {agent} sorted everything out in minutes.",
        "Second order this month and again perfect. Keep it up!",
        "The packaging was plastic-free, which I really appreciate.",
    ),
    "missing": (
        "Only {k} of the {count} items were in the box; the {product} is missing.",
        "The parcel felt light, and the {product} wasn't inside.",
        "I received the order but the {product} was not included.",
        "Packing slip lists the {product} but it isn't in the package.",
        "Something is missing: no {product} in the box, just the other items.",
    ),
    "allergy": (
        "Please note there is a severe nut allergy in our household; nothing with nuts please.",
        "I'm allergic to latex, please avoid latex packing materials.",
        "No scented inserts or samples please, I react badly to fragrances.",
        "Allergy note: please don't add any free chocolate samples, my son has a peanut allergy.",
        "Please make sure the packaging is free of peanut-based fillers; allergy in the family.",
    ),
    "instructions": (
        "Please leave the parcel with the neighbour at number {n} if I'm not home.",
        "Ring the bell twice, the intercom is broken.",
        "Leave it behind the green gate, not on the doorstep.",
        "I work nights, please don't deliver before noon.",
        "Deliver to the reception desk on the ground floor, not the flat.",
        "If no one answers, the parcel can go in the shed at the side of the house.",
        "Please call me on arrival, the doorbell doesn't work.",
    ),
}
SUPPORT_NOTES: dict[str, tuple[str, ...]] = {
    "late": (
        "Customer called about the late parcel; opened an investigation with {carrier}.",
        "Chased {carrier} for an update, parcel is stuck at the regional depot.",
        "Offered a 10% voucher for the delay, customer accepted.",
    ),
    "damaged": (
        "Customer sent photos of the damaged box; claim filed with {carrier}.",
        "Confirmed damage from photos, refunding the {product}.",
    ),
    "missing": (
        "Warehouse checked the packing camera: the {product} was not packed. Refund approved.",
    ),
    "wrong_size": (
        "Return label for the {product} sent by e-mail.",
        "Customer returned the {product}, wrong size; refund approved.",
    ),
    "address": (
        "Called the customer and confirmed the corrected delivery address.",
        "Address fixed on the customer's request before dispatch.",
    ),
    "lost": (
        "{carrier} confirmed the parcel is lost in transit. Full refund issued.",
        "Parcel declared lost after {n} days, refunding the order.",
    ),
}
OPENERS = ("", "", "", "Hi, ", "Hello! ", "Hi there, ", "Good morning. ", "Hey, ", "Dear team, ")
CLOSERS = (
    "",
    "",
    "",
    " Thanks!",
    " Thank you.",
    " Cheers.",
    " Many thanks, {first}.",
    " Please advise.",
    " Kind regards, {first}",
    " Thanks in advance.",
)
RELATIONS = (
    "mum",
    "dad",
    "sister",
    "brother",
    "partner",
    "best friend",
    "grandmother",
    "colleague",
    "son",
    "daughter",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
CANCEL_REASONS_OPEN = (
    "customer changed their mind",
    "found it cheaper elsewhere",
    "ordered by mistake",
    "duplicate order",
    "delivery time too long",
    "cart abandoned, cancelled automatically after 7 days",
)
CANCEL_REASONS_PAID = (
    "customer requested cancellation before dispatch",
    "item out of stock",
    "suspected fraud, cancelled by risk team",
)
FAIL_REASONS = (
    "card declined by issuer",
    "insufficient funds",
    "3-D Secure authentication failed",
    "card expired",
    "payment provider timeout",
    "authorization expired before capture",
)
DISCOUNTS = (
    ("WELCOME10", 10, 0),
    ("SPRING15", 15, 0),
    ("LOYAL5", 5, 0),
    ("FRIENDS20", 20, 0),
    ("SAVE5", 0, 500),
    ("FREESHIP", 0, 495),
    ("NEWSLETTER", 0, 1000),
)


def note_text(rng: random.Random, theme: str, ctx: dict[str, Any], *, support: bool = False) -> str:
    """One note of a theme, phrased at random, with the order's context filled in."""
    pool = SUPPORT_NOTES[theme] if support else NOTES[theme]
    body = rng.choice(pool).format(**ctx)
    if support:
        return body
    text = rng.choice(OPENERS) + body + rng.choice(CLOSERS).format(**ctx)
    return text


# --- one order's plan ------------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    """The timed commands of one order: (occurred_s, recorded_s, command) in order."""

    order_id: str
    rng: random.Random
    start: datetime
    t: float
    recorded: float = 0.0
    steps: list[tuple[float, float, OrderCommand]] = field(default_factory=list)

    def at(self, seconds: float) -> datetime:
        return self.start + timedelta(seconds=round(seconds, 3))

    def add(
        self,
        wait_s: float,
        command: Callable[..., OrderCommand],
        late_s: float = 0.0,
        **fields: Any,
    ) -> None:
        """Plan ``command(**fields)`` ``wait_s`` after the previous step, recorded ``late_s`` late."""
        self.t += wait_s
        # Recording never overtakes an earlier step of the same order: versions follow occurred_at.
        self.recorded = max(self.t + late_s, self.recorded)
        cmd = command(order_id=self.order_id, at=self.at(self.t), **fields)
        self.steps.append((self.t, self.recorded, cmd))


def _plan_order(
    index: int, seed: int, order_id: str, created_s: float, customer: Customer, start: datetime
) -> _Plan:
    rng = random.Random(f"{seed}/{index}")
    p = _Plan(order_id, rng, start, created_s)
    cur, region = customer.region.currency, customer.region
    u = rng.uniform
    channel = customer.channel if rng.random() < 0.8 else _weighted(rng, CHANNELS)
    p.add(
        0,
        CreateOrder,
        customer_id=customer.customer_id,
        customer_name=customer.name,
        customer_email=customer.email,
        currency=cur,
        channel=channel,
    )
    lines: dict[str, list[Any]] = {}  # sku -> [product, quantity, unit price]

    def add_item(wait: float) -> None:
        product = rng.choice(CATALOGUE)
        qty = _weighted(rng, ((1, 70), (2, 20), (3, 7), (4, 3)))
        price = price_in(product, cur)
        lines.setdefault(product.sku, [product, 0, price])[1] += qty
        p.add(
            wait,
            AddItem,
            sku=product.sku,
            product_name=product.name,
            quantity=qty,
            unit_price_cents=price,
        )

    for _ in range(_weighted(rng, ((1, 30), (2, 30), (3, 20), (4, 12), (5, 8)))):
        add_item(u(20, 420))
    if rng.random() < 0.35:  # the cart shrinks
        sku = rng.choice(sorted(lines))
        held = lines[sku][1]
        if held > 1 or len(lines) > 1:
            partial = held > 1 and (len(lines) == 1 or rng.random() < 0.6)
            qty = rng.randint(1, held - 1) if partial else held
            lines[sku][1] -= qty
            if lines[sku][1] == 0:
                del lines[sku]
            p.add(u(30, 1800), RemoveItem, sku=sku, quantity=qty)
    if rng.random() < 0.15:  # ... and grows again when the customer comes back
        add_item(u(3600, 26 * 3600))

    subtotal = sum(q * price for _, q, price in lines.values())
    ctx: dict[str, Any] = {
        "first": customer.first_name,
        "city": customer.city,
        "street": f"{rng.choice(region.streets)} {rng.randrange(1, 180)}",
        "postal": customer.postal_code,
        "n": rng.randint(2, 40),
        "weekday": rng.choice(WEEKDAYS),
        "relation": rng.choice(RELATIONS),
        "count": sum(q for _, q, _ in lines.values()),
        "k": max(0, sum(q for _, q, _ in lines.values()) - 1),
        "agent": rng.choice(SUPPORT_AGENTS),
        "product": rng.choice([v[0].name.split(" (")[0] for v in lines.values()]),
        "carrier": "the courier",
    }

    def note(wait: float, theme: str, *, support: bool = False, late_s: float = 0.0) -> None:
        text = note_text(rng, theme, ctx, support=support)
        author = f"support:{ctx['agent']}" if support else "customer"
        p.add(wait, AddCustomerNote, late_s, author=author, note=text)

    gift = rng.random() < 0.12
    if gift:
        recipient = f"{rng.choice(region.first_names)} {rng.choice(region.last_names)}"
        city, postal = rng.choice(region.cities)
        street = f"{rng.choice(region.streets)} {rng.randrange(1, 180)}"
    else:
        recipient, city, postal, street = (
            customer.name,
            customer.city,
            customer.postal_code,
            customer.street,
        )
    ctx["city"] = city
    p.add(
        u(30, 600),
        UpdateShippingAddress,
        recipient=recipient,
        street=street,
        city=city,
        postal_code=postal,
        country=region.country,
    )
    if gift and rng.random() < 0.7:
        note(u(10, 300), "gift")

    discount = 0
    if rng.random() < 0.22:
        code, pct, fixed = rng.choice(DISCOUNTS)
        amount = subtotal * pct // 100 if pct else fixed
        if 0 < amount < subtotal:
            discount = amount
            p.add(
                u(10, 240),
                ApplyDiscount,
                code=code,
                amount_cents=amount,
            )
    total = subtotal - discount

    fate = rng.random()
    if fate < 0.06:  # abandoned cart: sometimes cancelled automatically a week later
        if rng.random() < 0.5:
            p.add(
                7 * 86400,
                CancelOrder,
                reason=CANCEL_REASONS_OPEN[-1],
            )
        return p
    if fate < 0.11:
        reason = rng.choice(CANCEL_REASONS_OPEN[:-1])
        p.add(u(600, 2 * 86400), CancelOrder, reason=reason)
        return p
    for kind in ("allergy", "instructions"):
        if rng.random() < (0.05 if kind == "allergy" else 0.12):
            note(u(10, 3600), kind)

    methods = METHODS.get(region.country, METHODS["default"])

    def payment_id() -> str:
        return f"pay-{rng.getrandbits(48):012x}"

    failures = 0 if rng.random() < 0.82 else (1 if rng.random() < 0.8 else 2)
    for _ in range(failures):
        pid, reason = payment_id(), rng.choice(FAIL_REASONS)
        webhook_late = u(120, 3 * 3600) if rng.random() < 0.25 else 0.0
        if rng.random() < 0.5:  # authorized first, then the provider reported the failure
            method = rng.choice(methods)
            p.add(
                u(20, 300),
                AuthorizePayment,
                payment_id=pid,
                amount_cents=total,
                method=method,
            )
        p.add(
            u(5, 600),
            FailPayment,
            webhook_late,
            payment_id=pid,
            reason=reason,
        )
    if failures and rng.random() < 0.12:
        p.add(
            u(3600, 3 * 86400),
            CancelOrder,
            reason="payment failed repeatedly",
        )
        return p

    pid, method = payment_id(), rng.choice(methods)
    p.add(
        u(20, 900),
        AuthorizePayment,
        payment_id=pid,
        amount_cents=total,
        method=method,
    )
    if total > 1 and rng.random() < 0.08:  # split capture: two shipments' worth
        first_part = total // 2
        p.add(
            u(60, 6 * 3600),
            CapturePayment,
            payment_id=pid,
            amount_cents=first_part,
        )
        p.add(
            u(60, 12 * 3600),
            CapturePayment,
            payment_id=pid,
            amount_cents=total - first_part,
        )
    else:
        p.add(
            u(60, 6 * 3600),
            CapturePayment,
            payment_id=pid,
            amount_cents=total,
        )
    captured, refunded = total, 0

    def refund(wait: float, amount: int, reason: str) -> None:
        nonlocal refunded
        amount = min(amount, captured - refunded)
        if amount > 0:
            refunded += amount
            p.add(
                wait,
                IssueRefund,
                amount_cents=amount,
                reason=reason,
            )

    if rng.random() < 0.03:  # cancelled after payment, before dispatch
        reason = rng.choice(CANCEL_REASONS_PAID)
        p.add(u(600, 86400), CancelOrder, reason=reason)
        refund(u(600, 2 * 86400), captured, "order cancelled before shipping")
        return p
    if rng.random() < 0.08:  # address problem, fixed before dispatch
        note(u(600, 12 * 3600), "address")
        street2 = ctx["street"]
        p.add(
            u(300, 6 * 3600),
            UpdateShippingAddress,
            recipient=recipient,
            street=street2,
            city=city,
            postal_code=postal,
            country=region.country,
        )
        if rng.random() < 0.5:
            note(u(60, 3600), "address", support=True, late_s=u(3600, 20 * 3600))

    carrier = rng.choice(region.carriers)
    ctx["carrier"] = carrier
    tracking = tracking_number(rng, carrier)
    p.add(
        u(4 * 3600, 2 * 86400),
        ShipOrder,
        carrier=carrier,
        tracking_number=tracking,
    )

    transit = u(86400, 5 * 86400)
    late = rng.random() < 0.1
    if rng.random() < 0.03:  # lost in transit
        wait = u(7, 10) * 86400
        note(wait, "late")
        note(u(2, 5) * 86400, "lost", support=True)
        refund(u(600, 86400), captured, "parcel lost in transit")
        return p
    if late:
        note(transit + u(86400, 3 * 86400), "late")
        if rng.random() < 0.5:
            note(u(3600, 86400), "late", support=True, late_s=u(3600, 18 * 3600))
        transit = u(86400, 5 * 86400)
    scan_late = (
        u(2 * 3600, 3 * 86400) if rng.random() < 0.25 else 0.0
    )  # delivery scan uploaded late
    p.add(transit, DeliverOrder, scan_late)
    if late and rng.random() < 0.4:
        refund(u(3600, 2 * 86400), max(1, total // 10), "goodwill gesture for late delivery")

    price_of = {sku: price for sku, (_, _, price) in lines.items()}
    problem = rng.random()
    if problem < 0.05:
        note(u(3600, 2 * 86400), "damaged")
        if rng.random() < 0.6:
            note(u(3600, 86400), "damaged", support=True, late_s=u(1800, 12 * 3600))
        refund(u(3600, 3 * 86400), price_of[rng.choice(sorted(price_of))], "item arrived damaged")
    elif problem < 0.08:
        note(u(3600, 2 * 86400), "missing")
        note(u(3600, 86400), "missing", support=True)
        refund(u(600, 86400), price_of[rng.choice(sorted(price_of))], "missing item")
    elif problem < 0.12:
        note(u(3600, 3 * 86400), "wrong_size")
        note(u(3600, 2 * 86400), "wrong_size", support=True)
        refund(u(5, 12) * 86400, price_of[rng.choice(sorted(price_of))], "wrong size, returned")
    elif problem < 0.15:
        refund(u(3, 25) * 86400, captured - refunded, "returned within 30 days")
    elif problem < 0.30:
        note(u(3600, 4 * 86400), "praise")
    return p


# --- the simulation --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GenerateSummary:
    """What ``generate`` wrote: counts, time range, head, events by type."""

    seed: int
    orders: int
    customers: int
    days: int
    start: datetime
    events: int
    head: int
    rejected: int
    back_dated: int
    first_occurred_at: datetime | None
    last_occurred_at: datetime | None
    first_recorded_at: datetime | None
    last_recorded_at: datetime | None
    by_type: dict[str, int]
    seconds: float
    rejections: list[str] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        """Events written per wall-clock second."""
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times in ISO 8601)."""

        def iso(t: datetime | None) -> str | None:
            return t.isoformat() if t else None

        return {
            "seed": self.seed,
            "orders": self.orders,
            "customers": self.customers,
            "days": self.days,
            "start": self.start.isoformat(),
            "events": self.events,
            "head": self.head,
            "rejected": self.rejected,
            "back_dated": self.back_dated,
            "first_occurred_at": iso(self.first_occurred_at),
            "last_occurred_at": iso(self.last_occurred_at),
            "first_recorded_at": iso(self.first_recorded_at),
            "last_recorded_at": iso(self.last_recorded_at),
            "by_type": dict(sorted(self.by_type.items())),
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_per_second, 1),
            "rejections": self.rejections,
        }


class _SimClock:
    """The simulated wall clock the log reads when it records a commit."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _check_args(orders: object, days: object, seed: object, start: datetime | None) -> datetime:
    for name, value, low, high in (("orders", orders, 1, MAX_ORDERS), ("days", days, 1, MAX_DAYS)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInputError(
                f"{name} must be an integer from {low} to {high}, got {value!r}"
            )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidInputError(f"seed must be an integer, got {seed!r}")
    return DEFAULT_START if start is None else utc(start)


def generate(
    log_or_lake: EventLog | str | Path,
    *,
    orders: int,
    days: int,
    seed: int,
    start: datetime | None = None,
    progress: bool | ProgressCallback = False,
) -> GenerateSummary:
    """Simulate ``days`` days of a shop with ``orders`` orders and append them through ``handle_many``.

    Orders are created over the whole period (more during the day) and live on for
    days; the simulation stops at ``start + days``, so late orders are still in flight.
    ``log_or_lake`` is an open EventLog (sealed at the end, left open) or a lake path
    (opened, and closed at the end, which seals it).
    """
    begin = _check_args(orders, days, seed, start)
    own = not isinstance(log_or_lake, EventLog)
    log = EventLog.open(log_or_lake) if own else log_or_lake  # type: ignore[arg-type]
    assert isinstance(log, EventLog)
    saved = (log.clock, log.id_factory, log.seal_max_age, log.seal_max_events)
    clock = _SimClock(begin)
    id_rng = random.Random(seed)
    log.clock = clock
    log.id_factory = lambda: str(uuid.UUID(int=id_rng.getrandbits(128), version=4))
    # Seal by size only (and at the end): simulated days pass in seconds of wall time.
    log.seal_max_age, log.seal_max_events = timedelta(days=MAX_DAYS + 1), 100000
    t0 = time.perf_counter()
    try:
        head_before = log.head()
        rejections, customers = _simulate(
            log, clock, orders=orders, days=days, seed=seed, start=begin, progress=progress
        )
        log.seal()
        return _summarize(log, head_before, seed, orders, customers, days, begin, rejections, t0)
    finally:
        log.clock, log.id_factory, log.seal_max_age, log.seal_max_events = saved
        if own:
            log.close()


def _simulate(
    log: EventLog,
    clock: _SimClock,
    *,
    orders: int,
    days: int,
    seed: int,
    start: datetime,
    progress: bool | ProgressCallback,
) -> tuple[list[str], int]:
    rng = random.Random(f"{seed}/world")
    customers = _make_customers(rng, max(5, int(orders * 0.6)))
    hours = [
        (h, w)
        for h, w in enumerate(
            (1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 9, 10, 9, 8, 8, 8, 9, 10, 11, 10, 8, 5, 2)
        )
    ]
    created = sorted(
        rng.randrange(days) * 86400.0 + _weighted(rng, hours) * 3600.0 + rng.random() * 3600.0
        for _ in range(orders)
    )
    who = [
        customers[int(len(customers) * rng.random() ** 2)] for _ in range(orders)
    ]  # regulars order more
    order_ids: list[str] = []
    seen: set[str] = set()
    for _ in range(orders):
        oid = f"ord-{rng.getrandbits(48):012x}"
        while oid in seen:
            oid = f"ord-{rng.getrandbits(48):012x}"
        seen.add(oid)
        order_ids.append(oid)
    end = days * 86400.0
    heap: list[tuple[float, int, int]] = []  # (recorded_s, order index, step)
    plans: dict[int, _Plan] = {}
    batch: list[tuple[int, int]] = []
    rejections: list[str] = []
    written = 0
    nxt = 0
    batch_start = 0.0
    report = _progress_reporter(progress, end)

    def flush() -> None:
        nonlocal written
        if not batch:
            return
        steps = [plans[i].steps[s] for i, s in batch]
        clock.now = start + timedelta(seconds=round(max(r for _, r, _ in steps), 3))
        results = handle_many(
            log,
            ORDER_DECIDER,
            [(plans[i].order_id, cmd) for (i, _), (_, _, cmd) in zip(batch, steps, strict=True)],
            command_ids=[f"gen-{seed}-{plans[i].order_id}-{s}" for i, s in batch],
            metadata={"source": "generator"},
            read_back=False,
        )
        for res in results:
            if res.error is not None:
                rejections.append(str(res.error))
            elif res.append is not None and not res.duplicate:
                written += res.append.last_position - res.append.first_position + 1
        for i, s in batch:
            if s == len(plans[i].steps) - 1:
                del plans[i]
        batch.clear()
        report((clock.now - start).total_seconds(), written)

    try:
        while True:
            upcoming = heap[0][0] if heap else float("inf")
            while nxt < orders and created[nxt] <= upcoming:
                plan = _plan_order(nxt, seed, order_ids[nxt], created[nxt], who[nxt], start)
                plans[nxt] = plan
                heapq.heappush(heap, (plan.steps[0][1], nxt, 0))
                upcoming = heap[0][0]
                nxt += 1
            if not heap:
                break
            recorded, i, s = heapq.heappop(heap)
            if recorded >= end:
                break  # the period is over; whatever is still planned never happened
            if batch and (recorded - batch_start > COMMIT_WINDOW_S or len(batch) >= MAX_BATCH):
                flush()
            if not batch:
                batch_start = recorded
            batch.append((i, s))
            if s + 1 < len(plans[i].steps):
                heapq.heappush(heap, (plans[i].steps[s + 1][1], i, s + 1))
        flush()
    finally:
        report(None, written)
    return rejections, len({c.customer_id for c in who})


def _progress_reporter(
    progress: bool | ProgressCallback, end: float
) -> Callable[[float | None, int], None]:
    if callable(progress):
        callback = progress
        return lambda done, n: callback(1.0 if done is None else min(1.0, done / end), n)
    if not progress:
        return lambda done, n: None
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[events]:,} events"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    task = bar.add_task("simulating days", total=end, events=0)
    bar.start()

    def report(done: float | None, n: int) -> None:
        if done is None:
            bar.update(task, completed=end, events=n)
            bar.stop()
            return
        bar.update(
            task,
            completed=min(done, end),
            events=n,
            description=f"simulating day {min(int(done // 86400) + 1, int(end // 86400))}/{int(end // 86400)}",
        )

    return report


def _summarize(
    log: EventLog,
    head_before: int,
    seed: int,
    orders: int,
    customers: int,
    days: int,
    start: datetime,
    rejections: list[str],
    t0: float,
) -> GenerateSummary:
    head = log.head()
    table = log.read_all(after=head_before, columns=["event_type", "occurred_at", "recorded_at"])
    seconds = time.perf_counter() - t0
    by_type: Counter[str] = Counter()
    if table.num_rows:
        counts = table.column("event_type").cast(pa.string()).value_counts()
        by_type.update({str(v["values"]): int(v["counts"]) for v in counts.to_pylist()})
    occ, rec = table.column("occurred_at"), table.column("recorded_at")
    lag = pc.subtract(rec.cast(pa.int64()), occ.cast(pa.int64()))
    back = int(pc.sum(pc.greater(lag, BACK_DATED_AFTER // timedelta(microseconds=1))).as_py() or 0)
    return GenerateSummary(
        seed=seed,
        orders=orders,
        customers=customers,
        days=days,
        start=start,
        events=table.num_rows,
        head=head,
        rejected=len(rejections),
        back_dated=back,
        first_occurred_at=pc.min(occ).as_py(),
        last_occurred_at=pc.max(occ).as_py(),
        first_recorded_at=pc.min(rec).as_py(),
        last_recorded_at=pc.max(rec).as_py(),
        by_type=dict(by_type),
        seconds=seconds,
        rejections=rejections[:10],
    )
