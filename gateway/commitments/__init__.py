"""Service commitments (物业服务承诺): the catalogue, the pure formulas, and the monthly report."""
