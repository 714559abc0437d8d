"""Group arithmetic on edwards25519 (RFC 8032 section 5.1) for ed25519.py. Owns
field constants, point encoding and scalar multiplication; knows nothing of keys,
hashing or messages. Pure Python that must run unchanged on MicroPython.

Points are tuples of ints in extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z,
x*y = T/Z (Hisil-Wong-Carter-Dawson 2008). Two addend forms avoid work in loops:
"cached" (Y+X, Y-X, 2Z, 2d*T) for variable points and "niels" (y+x, y-x, 2d*x*y)
for the affine precomputed multiples of the base point (one multiplication fewer).
Not constant time: Python big ints are not, but signing performs the same sequence
of point operations whatever the secret digits are."""

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # order of the base point
D = 37095705934669439343138083508754565189542113879843219016388785533085940283555  # -121665/121666
D2 = 2 * D % P
SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752  # 2**((P-1)/4)
_BASE_X = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BASE_Y = 46316835694926478169428394003475163141307993866256225615783033603165251855960
BASE = (_BASE_X, _BASE_Y, 1, _BASE_X * _BASE_Y % P)
IDENTITY = (0, 1, 1, 0)
_NIELS_IDENTITY = (1, 1, 0)
_Y_MASK = (1 << 255) - 1

# Fixed-base comb: row i holds j * 16**(SPACING*i) * B for j = 1..8 (affine niels),
# so a signed radix-16 scalar costs 64 table additions and 4*(SPACING-1) doublings.
# SPACING trades board heap for signing time: 2 -> 256 points (~100 kB on the 64-bit
# unix port), 8 -> 64 points (~25 kB) for about 40% more base-multiplication work.
# Built on first use so importing stays cheap.
COMB_SPACING = 8
_COMB_ROWS = 64 // COMB_SPACING
_base_table: list[tuple[int, int, int]] | None = None


def _double_xyz(x1: int, y1: int, z1: int) -> tuple[int, int, int]:
    """2P without T, for doublings that only feed further doublings (saves one
    multiplication each)."""
    a = x1 * x1 % P
    b = y1 * y1 % P
    s = x1 + y1
    h = a + b
    e = h - s * s % P
    g = a - b
    f = 2 * z1 * z1 % P + g
    return e * f % P, g * h % P, f * g % P


def double(x1: int, y1: int, z1: int) -> tuple[int, int, int, int]:
    """2P in extended coordinates (dbl-2008-hwcd with a = -1); T1 is not needed."""
    a = x1 * x1 % P
    b = y1 * y1 % P
    s = x1 + y1
    h = a + b
    e = h - s * s % P
    g = a - b
    f = 2 * z1 * z1 % P + g
    return e * f % P, g * h % P, f * g % P, e * h % P


def _double4(q: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x, y, z = _double_xyz(q[0], q[1], q[2])
    x, y, z = _double_xyz(x, y, z)
    x, y, z = _double_xyz(x, y, z)
    return double(x, y, z)


def to_cached(q: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return (q[1] + q[0]) % P, (q[1] - q[0]) % P, 2 * q[2] % P, q[3] * D2 % P


def add_cached(q: tuple[int, int, int, int], c: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """q + c where c is in cached form (add-2008-hwcd-3 with a = -1, 8 multiplications)."""
    x1, y1, z1, t1 = q
    a = (y1 - x1) * c[1] % P
    b = (y1 + x1) * c[0] % P
    cc = t1 * c[3] % P
    d = z1 * c[2] % P
    e = b - a
    f = d - cc
    g = d + cc
    h = b + a
    return e * f % P, g * h % P, f * g % P, e * h % P


def _add_niels(q: tuple[int, int, int, int], n: tuple[int, int, int]) -> tuple[int, int, int, int]:
    """q + n where n is an affine niels point (7 multiplications)."""
    x1, y1, z1, t1 = q
    a = (y1 - x1) * n[1] % P
    b = (y1 + x1) * n[0] % P
    cc = t1 * n[2] % P
    d = 2 * z1
    e = b - a
    f = d - cc
    g = d + cc
    h = b + a
    return e * f % P, g * h % P, f * g % P, e * h % P


def negate(q: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return (P - q[0]) % P, q[1], q[2], (P - q[3]) % P


def is_small_order(q: tuple[int, int, int, int]) -> bool:
    """True when 8*q is the identity (q lies in the torsion subgroup)."""
    x, y, z = _double_xyz(q[0], q[1], q[2])
    x, y, z = _double_xyz(x, y, z)
    x, y, z = _double_xyz(x, y, z)
    return x % P == 0 and (y - z) % P == 0


def encode(q: tuple[int, int, int, int]) -> bytes:
    """RFC 8032 5.1.2: 255-bit little-endian y with the sign of x in the top bit."""
    z_inv = pow(q[2], P - 2, P)
    x = q[0] * z_inv % P
    y = q[1] * z_inv % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def decode(data: bytes) -> tuple[int, int, int, int] | None:
    """RFC 8032 5.1.3; None for a wrong length, y >= p, a non-square x**2, or x = 0
    with the sign bit set (the non-canonical encodings)."""
    if len(data) != 32:
        return None
    n = int.from_bytes(data, "little")
    sign = n >> 255
    y = n & _Y_MASK
    if y >= P:
        return None
    yy = y * y % P
    u = (yy - 1) % P
    v = (D * yy + 1) % P
    v3 = v * v % P * v % P
    uv3 = u * v3 % P
    x = uv3 * pow(uv3 * v3 % P * v % P, (P - 5) // 8, P) % P
    vxx = v * x % P * x % P
    if vxx != u:
        if vxx != P - u:
            return None
        x = x * SQRT_M1 % P
    if x == 0 and sign:
        return None
    if (x & 1) != sign:
        x = P - x
    return x, y, 1, x * y % P


def _signed_radix16(n: int) -> list[int]:
    """64 digits in [-8, 8] with n = sum(d[i] * 16**i); needs 0 <= n < 2**255."""
    digits = []
    for byte in n.to_bytes(32, "little"):
        digits.append(byte & 15)
        digits.append(byte >> 4)
    carry = 0
    for i in range(63):
        v = digits[i] + carry
        carry = (v + 8) >> 4
        digits[i] = v - (carry << 4)
    digits[63] += carry
    return digits


def _build_base_table() -> list[tuple[int, int, int]]:
    points = []
    row_base = BASE
    for row in range(_COMB_ROWS):
        cached = to_cached(row_base)
        q = row_base
        points.append(q)
        for _ in range(7):
            q = add_cached(q, cached)
            points.append(q)
        if row < _COMB_ROWS - 1:  # next row base = 2**(4*SPACING - 3) * (8 * row base)
            x, y, z = q[0], q[1], q[2]
            for _ in range(4 * COMB_SPACING - 4):
                x, y, z = _double_xyz(x, y, z)
            row_base = double(x, y, z)
    # Montgomery's trick: one inversion for all 256 Z coordinates.
    prefix = []
    acc = 1
    for q in points:
        prefix.append(acc)
        acc = acc * q[2] % P
    inv = pow(acc, P - 2, P)
    table = [_NIELS_IDENTITY] * len(points)
    for k in range(len(points) - 1, -1, -1):
        q = points[k]
        z_inv = inv * prefix[k] % P
        inv = inv * q[2] % P
        x = q[0] * z_inv % P
        y = q[1] * z_inv % P
        table[k] = ((y + x) % P, (y - x) % P, x * y % P * D2 % P)
    return table


def base_table() -> list[tuple[int, int, int]]:
    global _base_table
    if _base_table is None:
        _base_table = _build_base_table()
    return _base_table


def _select_niels(table: list[tuple[int, int, int]], row: int, digit: int) -> tuple[int, int, int]:
    if digit > 0:
        return table[8 * row + digit - 1]
    if digit < 0:
        n = table[8 * row - digit - 1]
        return n[1], n[0], P - n[2]
    return _NIELS_IDENTITY


def base_mult(n: int) -> tuple[int, int, int, int]:
    """n * B with the precomputed table; always 64 additions whatever the digits."""
    table = base_table()
    digits = _signed_radix16(n % L)
    q = IDENTITY
    for j in range(COMB_SPACING - 1, -1, -1):
        if j != COMB_SPACING - 1:
            q = _double4(q)
        for row in range(_COMB_ROWS):
            q = _add_niels(q, _select_niels(table, row, digits[COMB_SPACING * row + j]))
    return q


def mult(n: int, point: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """n * point by a signed 4-bit fixed window; variable time, for public scalars only."""
    digits = _signed_radix16(n % L)
    cached = [to_cached(point)]
    q = point
    for _ in range(7):
        q = add_cached(q, cached[0])
        cached.append(to_cached(q))
    top = 63
    while top >= 0 and digits[top] == 0:
        top -= 1
    q = IDENTITY
    for i in range(top, -1, -1):
        if i != top:
            q = _double4(q)
        digit = digits[i]
        if digit > 0:
            q = add_cached(q, cached[digit - 1])
        elif digit < 0:
            c = cached[-digit - 1]
            q = add_cached(q, (c[1], c[0], c[2], P - c[3]))
    return q
