"""`kalypso dashboard`: a live explorer of markets, requests, generators and slashes.

It follows the deployment with the matcher's log follower into its own SQLite cache
(`store`), feeds the matcher's orderbook with the same events (`indexer`), and serves
server-rendered pages with a small polling script for the live feed (`app`).
"""
