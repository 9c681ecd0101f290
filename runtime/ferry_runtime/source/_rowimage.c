/* Binlog row images to JSON values, in C: the hot loop of source/rows.py.
 *
 * rows.py describes each column of a table as a small recipe (a kind, a width, an argument
 * and, for rare types, a Python callable); a Plan holds them and decodes a rows event's
 * body into the same values the generated Python decoders give: ints, floats, str (text,
 * DECIMAL and temporal text), None, and whatever a callable returns for the rest (FLOAT's
 * rounding, TIME, SET, binary, JSON). Anything unexpected (a value past the event's end,
 * a temporal or decimal value no valid row holds, text that is not UTF-8) raises
 * ValueError: rows.py then decodes the event with the Python decoders, which say exactly
 * what they always said. So C only has to be right where it succeeds, and a unit test
 * compares the two on random bytes. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Column kinds: the numbers rows.py passes (keep in step with rows._NATIVE). */
enum {
    K_INT = 0,        /* little-endian signed, size 1, 2, 3, 4 or 8 */
    K_UINT = 1,       /* little-endian unsigned, size 1, 2, 3, 4 or 8 */
    K_DOUBLE = 2,     /* 8 bytes */
    K_FLOAT = 3,      /* 4 bytes, then extra(float) */
    K_YEAR = 4,       /* 1 byte: 0 or year - 1900 */
    K_DECIMAL = 5,    /* a: precision, b: scale */
    K_DATE = 6,       /* 3 bytes */
    K_DATETIME = 7,   /* 5 bytes and the fraction; a: fsp */
    K_TIMESTAMP = 8,  /* 4 bytes and the fraction; a: fsp */
    K_CALL = 9,       /* size bytes, then extra(bytes) */
    K_ENUM = 10,      /* little-endian unsigned of size bytes, extra[index] */
    K_SET = 11,       /* little-endian unsigned of size bytes, then extra(int) */
    K_BIT = 12,       /* big-endian unsigned, size 1..8 */
    K_UTF8 = 13,      /* length-prefixed (size bytes) UTF-8 text */
    K_LATIN1 = 14,    /* length-prefixed MySQL latin1 (cp1252 and its five gaps) */
    K_TEXT_CALL = 15, /* length-prefixed bytes, then extra(bytes) */
};

typedef struct {
    PyObject *name;  /* the column's name (str) */
    int kind;
    int size; /* the value's width, or the length prefix's for the text kinds */
    int a, b;
    PyObject *extra; /* a callable or a tuple; NULL when the kind needs none */
} Column;

typedef struct {
    PyObject_HEAD
    Py_ssize_t count;
    Column *columns;
} Plan;

static const int DIG2BYTES[10] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};
static const uint32_t POW10[10] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                   100000000, 1000000000};

static PyObject *overrun(void)
{
    PyErr_SetString(PyExc_ValueError, "row image past the event's end");
    return NULL;
}

static PyObject *unexpected(const char *what)
{
    PyErr_Format(PyExc_ValueError, "unexpected %s value", what);
    return NULL;
}

static uint64_t little(const unsigned char *d, int size)
{
    uint64_t v = 0;
    for (int i = size - 1; i >= 0; i--)
        v = v << 8 | d[i];
    return v;
}

static uint64_t big(const unsigned char *d, int size)
{
    uint64_t v = 0;
    for (int i = 0; i < size; i++)
        v = v << 8 | d[i];
    return v;
}

/* ---------------------------------------------------------------- DECIMAL */

/* Appends one base-10**digits group: without padding when it leads, else zero-padded. */
static char *put_group(char *out, uint32_t group, int digits, int *leading)
{
    if (*leading) {
        if (group == 0)
            return out;
        *leading = 0;
        return out + sprintf(out, "%u", group);
    }
    return out + sprintf(out, "%0*u", digits, group);
}

static PyObject *decimal_text(const unsigned char *raw, int precision, int scale, int size)
{
    unsigned char v[64];
    char text[96], *out = text;
    int integral = precision - scale, negative, pos = 0, leading = 1;
    if (size > (int)sizeof(v) || precision > 65 || scale > 30 || integral < 0)
        return unexpected("DECIMAL");
    memcpy(v, raw, size);
    v[0] ^= 0x80;
    negative = v[0] & 0x80;
    if (negative)
        for (int i = 0; i < size; i++)
            v[i] ^= 0xFF;
    if (negative)
        *out++ = '-';
    /* integer part: the leftover leading digits, then groups of nine */
    if (integral % 9) {
        int digits = integral % 9, width = DIG2BYTES[digits];
        uint32_t group = (uint32_t)big(v, width);
        if (group >= POW10[digits])
            return unexpected("DECIMAL");
        out = put_group(out, group, digits, &leading);
        pos += width;
    }
    for (int i = 0; i < integral / 9; i++, pos += 4) {
        uint32_t group = (uint32_t)big(v + pos, 4);
        if (group >= 1000000000u)
            return unexpected("DECIMAL");
        out = put_group(out, group, 9, &leading);
    }
    if (leading)
        *out++ = '0';
    if (scale) {
        *out++ = '.';
        for (int i = 0; i < scale / 9; i++, pos += 4) {
            uint32_t group = (uint32_t)big(v + pos, 4);
            if (group >= 1000000000u)
                return unexpected("DECIMAL");
            out += sprintf(out, "%09u", group);
        }
        if (scale % 9) {
            int digits = scale % 9, width = DIG2BYTES[digits];
            uint32_t group = (uint32_t)big(v + pos, width);
            if (group >= POW10[digits])
                return unexpected("DECIMAL");
            out += sprintf(out, "%0*u", digits, group);
        }
    }
    return PyUnicode_FromStringAndSize(text, out - text);
}

/* ---------------------------------------------------------------- temporal */

static int leap(long year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int valid_date(long year, long month, long day)
{
    static const int days[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1 || month < 1 || month > 12 || day < 1)
        return 0;
    return day <= days[month] + (month == 2 && leap(year));
}

/* days since 1970-01-01 → civil date (Howard Hinnant's days_from_civil, inverted) */
static void civil(long long z, long *year, long *month, long *day)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *day = (long)(doy - (153 * mp + 2) / 5 + 1);
    *month = (long)(mp < 10 ? mp + 3 : mp - 9);
    *year = (long)(yoe + era * 400 + (*month <= 2));
}

/* ".123": the fraction's (fsp + 1) / 2 big-endian bytes as fsp digits */
static char *put_fraction(char *out, const unsigned char *raw, int fsp)
{
    if (!fsp)
        return out;
    uint64_t stored = big(raw, (fsp + 1) / 2);
    if (fsp % 2)
        stored /= 10;
    return out + sprintf(out, ".%0*llu", fsp, (unsigned long long)stored);
}

static PyObject *date_text(const unsigned char *raw)
{
    char text[32];
    uint32_t packed = (uint32_t)little(raw, 3);
    int n = sprintf(text, "%04u-%02u-%02u", packed >> 9, (packed >> 5) & 15, packed & 31);
    return PyUnicode_FromStringAndSize(text, n);
}

static PyObject *datetime_text(const unsigned char *raw, int fsp)
{
    char text[64], *out = text;
    uint64_t stored = big(raw, 5);
    if (stored < 0x8000000000ULL)
        return unexpected("DATETIME");
    uint64_t packed = stored - 0x8000000000ULL, ymd = packed >> 17, hms = packed & 0x1FFFF;
    long year = (long)((ymd >> 5) / 13), month = (long)((ymd >> 5) % 13), day = (long)(ymd & 31);
    /* a valid date before 1000 as datetime.strftime's %Y gives it (glibc: no padding) */
    if (year < 1000 && valid_date(year, month, day))
        out += sprintf(out, "%ld-%02ld-%02ld", year, month, day);
    else
        out += sprintf(out, "%04ld-%02ld-%02ld", year, month, day);
    out += sprintf(out, " %02u:%02u:%02u", (unsigned)(hms >> 12), (unsigned)(hms >> 6) & 63,
                   (unsigned)hms & 63);
    out = put_fraction(out, raw + 5, fsp);
    return PyUnicode_FromStringAndSize(text, out - text);
}

static PyObject *timestamp_text(const unsigned char *raw, int fsp)
{
    char text[64], *out = text;
    uint64_t seconds = big(raw, 4);
    if (!seconds) {
        out += sprintf(out, "0000-00-00 00:00:00");
    } else {
        long year, month, day;
        civil((long long)(seconds / 86400), &year, &month, &day);
        uint64_t rest = seconds % 86400;
        out += sprintf(out, "%04ld-%02ld-%02ld %02u:%02u:%02u", year, month, day,
                       (unsigned)(rest / 3600), (unsigned)(rest / 60 % 60), (unsigned)(rest % 60));
    }
    out = put_fraction(out, raw + 4, fsp);
    return PyUnicode_FromStringAndSize(text, out - text);
}

/* ---------------------------------------------------------------- one value */

/* extra(arg), taking the reference to arg (NULL: the error of making it). */
static PyObject *call_with(PyObject *fn, PyObject *arg)
{
    if (!arg)
        return NULL;
    PyObject *value = PyObject_CallOneArg(fn, arg);
    Py_DECREF(arg);
    return value;
}

static PyObject *call_bytes(PyObject *fn, const unsigned char *d, Py_ssize_t n)
{
    return call_with(fn, PyBytes_FromStringAndSize((const char *)d, n));
}

/* The value of `column` at d[*p], advancing *p; NULL with an exception set on failure. */
static PyObject *read_value(const Column *column, const unsigned char *d, Py_ssize_t end,
                            Py_ssize_t *p)
{
    const unsigned char *at = d + *p;
    Py_ssize_t room = end - *p;
    int size = column->size;
    if (column->kind == K_UTF8 || column->kind == K_LATIN1 || column->kind == K_TEXT_CALL) {
        if (room < size)
            return overrun();
        uint64_t n = little(at, size);
        if ((uint64_t)(room - size) < n)
            return overrun();
        const char *text = (const char *)at + size;
        *p += size + (Py_ssize_t)n;
        if (column->kind == K_UTF8)
            return PyUnicode_DecodeUTF8(text, (Py_ssize_t)n, "strict");
        if (column->kind == K_LATIN1)
            return PyUnicode_Decode(text, (Py_ssize_t)n, "cp1252", "ferry-latin1");
        return call_bytes(column->extra, (const unsigned char *)text, (Py_ssize_t)n);
    }
    if (room < size)
        return overrun();
    *p += size;
    switch (column->kind) {
    case K_INT: {
        uint64_t v = little(at, size);
        int bits = 8 * size;
        if (bits < 64 && (v >> (bits - 1)) & 1)
            return PyLong_FromLongLong((long long)v - (1LL << bits));
        return PyLong_FromLongLong((long long)v);
    }
    case K_UINT:
        return PyLong_FromUnsignedLongLong(little(at, size));
    case K_DOUBLE: {
        uint64_t bits = little(at, 8);
        double v;
        memcpy(&v, &bits, 8);
        return PyFloat_FromDouble(v);
    }
    case K_FLOAT: {
        uint32_t bits = (uint32_t)little(at, 4);
        float v;
        memcpy(&v, &bits, 4);
        return call_with(column->extra, PyFloat_FromDouble((double)v));
    }
    case K_YEAR:
        return PyLong_FromLong(at[0] ? at[0] + 1900 : 0);
    case K_DECIMAL:
        return decimal_text(at, column->a, column->b, size);
    case K_DATE:
        return date_text(at);
    case K_DATETIME:
        return datetime_text(at, column->a);
    case K_TIMESTAMP:
        return timestamp_text(at, column->a);
    case K_CALL:
        return call_bytes(column->extra, at, size);
    case K_ENUM: {
        uint64_t index = little(at, size);
        if (index >= (uint64_t)PyTuple_GET_SIZE(column->extra))
            return unexpected("ENUM");
        PyObject *value = PyTuple_GET_ITEM(column->extra, (Py_ssize_t)index);
        Py_INCREF(value);
        return value;
    }
    case K_SET:
        return call_with(column->extra, PyLong_FromUnsignedLongLong(little(at, size)));
    case K_BIT:
        return PyLong_FromUnsignedLongLong(big(at, size));
    }
    PyErr_Format(PyExc_ValueError, "unknown column kind %d", column->kind);
    return NULL;
}

/* ---------------------------------------------------------------- images and events */

/* One row image: every column's value by name (None where absent or NULL). */
static PyObject *read_image(const Plan *plan, const unsigned char *d, Py_ssize_t end,
                            Py_ssize_t *p, const unsigned char *bitmap, Py_ssize_t present)
{
    Py_ssize_t null_bytes = (present + 7) / 8, chosen = 0;
    if (end - *p < null_bytes)
        return overrun();
    const unsigned char *nulls = d + *p;
    *p += null_bytes;
    PyObject *row = PyDict_New();
    if (!row)
        return NULL;
    for (Py_ssize_t i = 0; i < plan->count; i++) {
        const Column *column = &plan->columns[i];
        PyObject *value;
        if (!(bitmap[i >> 3] >> (i & 7) & 1)) {
            value = Py_NewRef(Py_None);
        } else {
            int null = nulls[chosen >> 3] >> (chosen & 7) & 1;
            chosen++;
            value = null ? Py_NewRef(Py_None) : read_value(column, d, end, p);
        }
        if (!value || PyDict_SetItem(row, column->name, value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(row);
            return NULL;
        }
        Py_DECREF(value);
    }
    return row;
}

static Py_ssize_t count_present(const Plan *plan, const Py_buffer *bitmap)
{
    Py_ssize_t present = 0;
    const unsigned char *bits = bitmap->buf;
    if (bitmap->len < (plan->count + 7) / 8) {
        PyErr_SetString(PyExc_ValueError, "columns-present bitmap shorter than the table");
        return -1;
    }
    for (Py_ssize_t i = 0; i < plan->count; i++)
        present += bits[i >> 3] >> (i & 7) & 1;
    return present;
}

PyDoc_STRVAR(decode_doc,
"decode(body, bitmap, bitmap2=None) -> list of (values, before-values or None)\n\n"
"Every row image of a rows event's body; with bitmap2 (an update) the images come in\n"
"pairs, before then after.");

static PyObject *Plan_decode(Plan *self, PyObject *args)
{
    Py_buffer body, bitmap, bitmap2 = {0};
    PyObject *second = Py_None, *out = NULL;
    if (!PyArg_ParseTuple(args, "y*y*|O", &body, &bitmap, &second))
        return NULL;
    if (second != Py_None && PyObject_GetBuffer(second, &bitmap2, PyBUF_SIMPLE) < 0)
        goto done;
    Py_ssize_t present = count_present(self, &bitmap), present2 = 0;
    if (present < 0)
        goto done;
    if (bitmap2.obj && (present2 = count_present(self, &bitmap2)) < 0)
        goto done;
    const unsigned char *d = body.buf;
    Py_ssize_t end = body.len, p = 0;
    out = PyList_New(0);
    if (!out)
        goto done;
    while (p < end) {
        PyObject *first = read_image(self, d, end, &p, bitmap.buf, present), *pair;
        if (!first)
            goto fail;
        if (bitmap2.obj) {
            PyObject *after = read_image(self, d, end, &p, bitmap2.buf, present2);
            if (!after) {
                Py_DECREF(first);
                goto fail;
            }
            pair = PyTuple_Pack(2, after, first);
            Py_DECREF(after);
        } else {
            pair = PyTuple_Pack(2, first, Py_None);
        }
        Py_DECREF(first);
        if (!pair || PyList_Append(out, pair) < 0) {
            Py_XDECREF(pair);
            goto fail;
        }
        Py_DECREF(pair);
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    PyBuffer_Release(&body);
    PyBuffer_Release(&bitmap);
    if (bitmap2.obj)
        PyBuffer_Release(&bitmap2);
    return out;
}

/* ---------------------------------------------------------------- the Plan type */

static int valid_column(const Column *c)
{
    switch (c->kind) {
    case K_INT:
    case K_UINT:
    case K_ENUM:
    case K_SET:
        return c->size == 1 || c->size == 2 || c->size == 3 || c->size == 4 || c->size == 8;
    case K_DOUBLE:
        return c->size == 8;
    case K_FLOAT:
        return c->size == 4;
    case K_YEAR:
        return c->size == 1;
    case K_DATE:
        return c->size == 3;
    case K_DATETIME:
        return c->a >= 0 && c->a <= 6 && c->size == 5 + (c->a + 1) / 2;
    case K_TIMESTAMP:
        return c->a >= 0 && c->a <= 6 && c->size == 4 + (c->a + 1) / 2;
    case K_DECIMAL:
        return c->size > 0 && c->size <= 64;
    case K_BIT:
        return c->size >= 1 && c->size <= 8;
    case K_CALL:
        return c->size >= 0;
    case K_UTF8:
    case K_LATIN1:
    case K_TEXT_CALL:
        return c->size >= 1 && c->size <= 4;
    }
    return 0;
}

static void Plan_dealloc(Plan *self)
{
    for (Py_ssize_t i = 0; i < self->count; i++) {
        Py_XDECREF(self->columns[i].name);
        Py_XDECREF(self->columns[i].extra);
    }
    PyMem_Free(self->columns);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Plan_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *specs;
    static char *keywords[] = {"columns", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!:Plan", keywords, &PyList_Type, &specs))
        return NULL;
    Plan *self = (Plan *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(specs);
    self->columns = PyMem_Calloc(count ? count : 1, sizeof(Column));
    if (!self->columns) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Column *c = &self->columns[i];
        PyObject *name, *extra;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(specs, i), "UiiiiO:column", &name, &c->kind,
                              &c->size, &c->a, &c->b, &extra)) {
            Py_DECREF(self);
            return NULL;
        }
        self->count = i + 1;
        c->name = Py_NewRef(name);
        PyUnicode_InternInPlace(&c->name);
        c->extra = extra == Py_None ? NULL : Py_NewRef(extra);
        int needs = c->kind == K_FLOAT || c->kind == K_CALL || c->kind == K_SET ||
                    c->kind == K_TEXT_CALL || c->kind == K_ENUM;
        if (!valid_column(c) || (needs && !c->extra) ||
            (c->kind == K_ENUM && !PyTuple_Check(c->extra))) {
            PyErr_Format(PyExc_ValueError, "column %R: bad recipe (kind %d, size %d)", name,
                         c->kind, c->size);
            Py_DECREF(self);
            return NULL;
        }
    }
    return (PyObject *)self;
}

static PyMethodDef Plan_methods[] = {
    {"decode", (PyCFunction)Plan_decode, METH_VARARGS, decode_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(plan_doc,
"Plan(columns): a table's row-image decoder. columns: one (name, kind, size, a, b, extra)\n"
"per column, in table order (see source/rows.py).");

static PyTypeObject PlanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ferry_runtime.source._rowimage.Plan",
    .tp_basicsize = sizeof(Plan),
    .tp_dealloc = (destructor)Plan_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = plan_doc,
    .tp_methods = Plan_methods,
    .tp_new = Plan_new,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ferry_runtime.source._rowimage",
    .m_doc = "Binlog row images to JSON values (the C half of ferry_runtime.source.rows).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__rowimage(void)
{
    if (PyType_Ready(&PlanType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    if (PyModule_AddObjectRef(m, "Plan", (PyObject *)&PlanType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
