"""tpp: neural temporal point processes and PromptTPP under the byte budget.

Empty for now: the models arrive with the temporal point process issue.
"""
