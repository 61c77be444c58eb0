"""Survey campaigns: who was asked, who answered, the NPS of each round and its change since the last."""
