"""Use cases shared by the API and the CLI: submit, list, get, cancel and retry tasks, read
their progress, and administer the queue. Each use case owns its transaction: it commits, then
publishes wake-ups, so a 2xx or a printed id always means the row is stored.
"""
