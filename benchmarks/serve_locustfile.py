"""Locust users for ``benchmarks/serve_load.py``: one endpoint per run, closed loop, no think time.

``SHOPAUG_BENCH_PLAN`` names a JSON file with the ids and queries to draw from (known users, item
ids, search queries, the API key); ``SHOPAUG_BENCH_ENDPOINT`` picks the endpoint every simulated
user hits.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

PLAN = json.loads(Path(os.environ["SHOPAUG_BENCH_PLAN"]).read_text())
ENDPOINT = os.environ["SHOPAUG_BENCH_ENDPOINT"]


class ShopUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def hit(self) -> None:
        getattr(self, ENDPOINT.replace("-", "_"))()

    def recommend(self) -> None:
        user = random.choice(PLAN["users"])
        self.client.get(f"/recommend/{user}?k=10", name="/recommend/{user_id}")

    def recommend_unknown(self) -> None:
        self.client.get(
            f"/recommend/anon-{random.randrange(10**9)}?k=10", name="/recommend/{unknown}"
        )

    def session(self) -> None:
        items = random.sample(PLAN["items"], 5)
        self.client.post("/recommend", json={"items": items, "k": 10}, name="POST /recommend")

    def similar(self) -> None:
        self.client.get(f"/similar/{random.choice(PLAN['items'])}?k=10", name="/similar/{item_id}")

    def search(self) -> None:
        query = random.choice(PLAN["queries"])
        self.client.get("/search", params={"q": query, "k": 10}, name="/search")

    def events(self) -> None:
        events = [
            {"user_id": random.choice(PLAN["users"]), "item_id": random.choice(PLAN["items"])}
            for _ in range(10)
        ]
        self.client.post(
            "/events",
            json={"events": events},
            headers={"X-API-Key": PLAN["api_key"]},
            name="POST /events (10)",
        )
