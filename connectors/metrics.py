"""Prometheus metrics of a connector process (`METRICS_PORT`), each labelled by connector name so several
connectors on one host stay apart; counts are per event read from the source."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RECEIVED = Counter("monitor_ingest_events_received", "Events read from the source (posts, deletions, others).",
                   ["connector"])
PRODUCED = Counter("monitor_ingest_produced", "Records acknowledged by the broker, by kind (post or deletion).",
                   ["connector", "kind"])
FILTERED = Counter("monitor_ingest_events_filtered",
                   "Posts dropped by the connector's filters (language, tracked terms) before producing.",
                   ["connector"])
MALFORMED = Counter("monitor_ingest_events_malformed",
                    "Events that could not be read as posts; each went to the dead-letter topic.", ["connector"])
RECONNECTS = Counter("monitor_ingest_reconnects", "Connections to the source opened again after a drop or error.",
                     ["connector"])
BEHIND = Gauge("monitor_ingest_seconds_behind_source",
               "Age of the newest event produced, by the source's own clock (a catch-up shows as a falling line).",
               ["connector"])
IN_FLIGHT = Gauge("monitor_ingest_in_flight", "Records sent to the broker and not yet acknowledged.", ["connector"])
