"""Model conversions run once by the install step (in a throwaway environment)."""
