"""Build examples/support_tickets.csv: a small, entirely synthetic table with PII to try `synthtext scan` on.

Messages are the synthetic sentences of bench/data/presidio_synth_pii.csv (presidio-research, MIT);
ids, names, emails, products and dates are drawn with Faker (seeded). No real person is in it.

Run: python examples/make_support_tickets.py
"""

from pathlib import Path

import pandas as pd
from faker import Faker

from synthtext.io import read_csv, write_csv

HERE = Path(__file__).resolve().parent
N_ROWS = 200


def main() -> None:
    fake = Faker("en_US")
    fake.seed_instance(0)
    sentences = read_csv(HERE.parent / "bench" / "data" / "presidio_synth_pii.csv")["full_text"]
    messages = sentences[sentences.str.split().str.len() >= 6].sample(N_ROWS, random_state=0).tolist()
    rows = []
    for i, message in enumerate(messages):
        rows.append({
            "ticket_id": f"T-{10000 + i}",
            "customer_name": fake.name(),
            "email": fake.email(),
            "product": fake.random_element(["dress", "jacket", "jeans", "sweater", "blouse"]),
            "priority": fake.random_element(["low", "normal", "high"]),
            "opened": fake.date_between("-1y", "today").isoformat(),
            "message": message,
        })
    write_csv(pd.DataFrame(rows), HERE / "support_tickets.csv")


if __name__ == "__main__":
    main()
