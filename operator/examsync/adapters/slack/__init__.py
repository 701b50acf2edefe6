"""Slack incoming webhook (notifications): the client and its sandbox simulator."""
