"""The user's project: configuration, suppression comments, baselines, rule pages."""
