"""recsys: recommenders, compressed embedding tables and DSL under the byte budget.

Empty for now: the models arrive with the recommendation issue.
"""
