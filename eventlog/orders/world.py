"""The generator's world: catalogue, prices, regions, customers, and the texts people write.

Mostly data (the catalogue, regions, note templates), which is why it runs past 400
lines: the tables read best in one place.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from typing import Any

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


def weighted(rng: random.Random, pairs: tuple[tuple[Any, int], ...] | list[tuple[Any, int]]) -> Any:
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


def make_customers(rng: random.Random, count: int) -> list[Customer]:
    regions = [(r, r.weight) for r in REGIONS]
    seen: set[str] = set()
    out = []
    for _ in range(count):
        cid = f"cus-{rng.getrandbits(40):010x}"
        while cid in seen:
            cid = f"cus-{rng.getrandbits(40):010x}"
        seen.add(cid)
        region: Region = weighted(rng, regions)
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
                weighted(rng, CHANNELS),
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
