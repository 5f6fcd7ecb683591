"""Reliability (issue 21): what a user, a plugin or the process order can break is refused clearly, never silently."""
