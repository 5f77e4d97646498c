"""Identity resolution: anonymous ids, user ids, emails and phones folded into customer profiles."""
