"""The pure core: hours, templates, auto-reply rules, recap content, preferences, delivery outcomes."""
