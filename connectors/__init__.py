"""Source connectors: read posts from social networks, feeds and files and publish them to the posts topic.

Shaped like Kafka Connect source connectors: each source (`bluesky`, `mastodon`, `feeds`, `files`) only turns its
protocol into `SourceRecord`s that carry a resume offset; `runner.IngestRunner` filters them, produces them with
acks from every in-sync replica, and persists the offset of what the broker acknowledged (`cursor`). Connectors
import only `core` and `schemas`: they run as their own processes, apart from the workers and the monitor.
"""
