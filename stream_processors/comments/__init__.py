"""What internal customers say: reading their redacted comments, and the themes that recur in them."""
