def owner() -> str:
    return 'x'
