"""GitHub-linked submissions: links, webhooks, fetching release assets, commit statuses."""
