"""Every Block Kit payload Offhours sends, built here and nowhere else, with slack_sdk's models.

Builders are pure: they take domain values and return lists of block dicts (or view dicts) within Slack's
limits (50 blocks per message, 100 per view, 3,000 characters per section text).
"""
