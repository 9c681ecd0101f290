/* A snapshot chunk's rows, sent by the server as one text of raw fields, to JSON: the
 * snapshot's hot path for a Kafka sink (source/snapshot.py, row_fields).
 *
 * The server concatenates each row's fields as binary text, a field after 0xFF, a row after
 * 0xFE, NULL as the single byte 0xFD (GROUP_CONCAT: one value per chunk, no row-by-row
 * protocol). Text is converted to utf8mb4 first, and valid UTF-8 holds none of those three
 * bytes; numbers and temporal values are ASCII. So the bytes split without escaping, and
 * rendering the JSON here costs less than the server's JSON functions did (its CPU is the
 * snapshot's largest share on a shared machine).
 *
 * Plan(labels, kinds, key) renders each row as {label0 value0 label1 value1 ...}: a label is
 * the JSON text before a value ('{"id":' then ',"name":'), a kind says how the field becomes
 * JSON, and key lists the fields of the row's key (integers: their text is their JSON).
 * split(text) returns the keys' JSON (a one-field key's text, or [a,b]) and the rows' JSON.
 * A text that does not hold rows of exactly the plan's fields raises ValueError. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

enum {
    K_NUMBER = 0, /* integer or YEAR text: as it is */
    K_DOUBLE = 1, /* the shortest text of a double: ".0" added to a whole number */
    K_QUOTED = 2, /* DECIMAL and temporal text: in quotes */
    K_TEXT = 3,   /* UTF-8 text: a JSON string */
};

#define FIELD_END 0xFF
#define ROW_END 0xFE
#define NULL_MARK 0xFD

typedef struct {
    PyObject_HEAD
    Py_ssize_t fields;
    char **labels;
    Py_ssize_t *label_lengths;
    unsigned char *kinds;
    Py_ssize_t key_count;
    Py_ssize_t *key;
    char *buffer; /* one row's JSON, grown as needed */
    Py_ssize_t capacity;
    PyObject *args; /* (labels, kinds, key): a plan is pickled as them (reader processes) */
} Plan;

static void plan_dealloc(Plan *self) {
    if (self->labels) {
        for (Py_ssize_t i = 0; i < self->fields; i++)
            PyMem_Free(self->labels[i]);
    }
    PyMem_Free(self->labels);
    PyMem_Free(self->label_lengths);
    PyMem_Free(self->kinds);
    PyMem_Free(self->key);
    PyMem_Free(self->buffer);
    Py_XDECREF(self->args);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int plan_init(Plan *self, PyObject *args, PyObject *kwargs) {
    PyObject *labels, *key;
    Py_buffer kinds;
    static char *names[] = {"labels", "kinds", "key", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!y*O!", names, &PyList_Type, &labels,
                                     &kinds, &PyTuple_Type, &key))
        return -1;
    Py_ssize_t count = PyList_GET_SIZE(labels);
    int ok = count > 0 && kinds.len == count && PyTuple_GET_SIZE(key) > 0 &&
             self->labels == NULL;
    if (!ok) {
        PyBuffer_Release(&kinds);
        PyErr_SetString(PyExc_ValueError, "a label and a kind for each field, and a key");
        return -1;
    }
    self->labels = PyMem_Calloc((size_t)count, sizeof(char *));
    self->label_lengths = PyMem_Calloc((size_t)count, sizeof(Py_ssize_t));
    self->kinds = PyMem_Malloc((size_t)count);
    self->key_count = PyTuple_GET_SIZE(key);
    self->key = PyMem_Calloc((size_t)self->key_count, sizeof(Py_ssize_t));
    self->fields = count;
    if (!self->labels || !self->label_lengths || !self->kinds || !self->key) {
        PyBuffer_Release(&kinds);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(self->kinds, kinds.buf, (size_t)count);
    PyBuffer_Release(&kinds);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *label = PyList_GET_ITEM(labels, i);
        if (!PyBytes_Check(label) || self->kinds[i] > K_TEXT) {
            PyErr_SetString(PyExc_ValueError, "labels are bytes, kinds 0 to 3");
            return -1;
        }
        Py_ssize_t length = PyBytes_GET_SIZE(label);
        self->labels[i] = PyMem_Malloc((size_t)length + 1);
        if (!self->labels[i]) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(self->labels[i], PyBytes_AS_STRING(label), (size_t)length);
        self->label_lengths[i] = length;
    }
    for (Py_ssize_t i = 0; i < self->key_count; i++) {
        Py_ssize_t field = PyLong_AsSsize_t(PyTuple_GET_ITEM(key, i));
        if (field < 0 || field >= count || self->kinds[field] != K_NUMBER) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "the key's fields are integer fields");
            return -1;
        }
        self->key[i] = field;
    }
    self->args = Py_BuildValue("(Oy#O)", labels, (const char *)self->kinds, count, key);
    return self->args == NULL ? -1 : 0;
}

static PyObject *plan_reduce(Plan *self, PyObject *unused) {
    (void)unused;
    if (self->args == NULL) {
        PyErr_SetString(PyExc_ValueError, "an uninitialised Plan");
        return NULL;
    }
    return Py_BuildValue("(OO)", (PyObject *)Py_TYPE(self), self->args);
}

/* Room for `more` bytes in the row buffer at `used`. */
static int reserve(Plan *self, Py_ssize_t used, Py_ssize_t more) {
    if (used + more <= self->capacity)
        return 0;
    Py_ssize_t capacity = (used + more) * 2;
    char *grown = PyMem_Realloc(self->buffer, (size_t)capacity);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->buffer = grown;
    self->capacity = capacity;
    return 0;
}

static const char HEX[] = "0123456789abcdef";

/* The JSON of one field at out[used:]; returns the new length, or -1. */
static Py_ssize_t render(Plan *self, Py_ssize_t used, int kind, const unsigned char *field,
                         Py_ssize_t length) {
    if (length == 1 && field[0] == NULL_MARK) {
        if (reserve(self, used, 4) < 0)
            return -1;
        memcpy(self->buffer + used, "null", 4);
        return used + 4;
    }
    if (kind == K_TEXT) {
        if (reserve(self, used, length * 6 + 2) < 0) /* \u00XX at most */
            return -1;
        char *out = self->buffer + used;
        *out++ = '"';
        const unsigned char *start = field, *end = field + length;
        for (const unsigned char *p = field; p < end; p++) {
            unsigned char c = *p;
            if (c >= 0x20 && c != '"' && c != '\\')
                continue;
            memcpy(out, start, (size_t)(p - start));
            out += p - start;
            start = p + 1;
            *out++ = '\\';
            switch (c) {
            case '"': *out++ = '"'; break;
            case '\\': *out++ = '\\'; break;
            case '\b': *out++ = 'b'; break;
            case '\f': *out++ = 'f'; break;
            case '\n': *out++ = 'n'; break;
            case '\r': *out++ = 'r'; break;
            case '\t': *out++ = 't'; break;
            default:
                memcpy(out, "u00", 3);
                out[3] = HEX[c >> 4];
                out[4] = HEX[c & 15];
                out += 5;
            }
        }
        memcpy(out, start, (size_t)(end - start));
        out += end - start;
        *out++ = '"';
        return out - self->buffer;
    }
    if (length == 0) {
        PyErr_SetString(PyExc_ValueError, "an empty number or temporal value");
        return -1;
    }
    if (reserve(self, used, length + 2) < 0)
        return -1;
    char *out = self->buffer + used;
    if (kind == K_QUOTED)
        *out++ = '"';
    memcpy(out, field, (size_t)length);
    out += length;
    if (kind == K_QUOTED)
        *out++ = '"';
    else if (kind == K_DOUBLE && !memchr(field, '.', (size_t)length) &&
             !memchr(field, 'e', (size_t)length)) {
        memcpy(out, ".0", 2); /* a whole number: a double's JSON has a point */
        out += 2;
    }
    return out - self->buffer;
}

/* A copy of data[:length] appended to the list. */
static int append(PyObject *list, const char *data, Py_ssize_t length) {
    PyObject *item = PyBytes_FromStringAndSize(data, length);
    if (item == NULL)
        return -1;
    int result = PyList_Append(list, item);
    Py_DECREF(item);
    return result;
}

static PyObject *plan_split(Plan *self, PyObject *arg) {
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "split() takes bytes");
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(arg);
    const unsigned char *end = p + PyBytes_GET_SIZE(arg);
    PyObject *keys = PyList_New(0), *rows = PyList_New(0);
    const unsigned char **starts = PyMem_Malloc(sizeof(char *) * (size_t)self->fields);
    Py_ssize_t *lengths = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)self->fields);
    if (!keys || !rows || !starts || !lengths) {
        PyErr_NoMemory();
        goto fail;
    }
    while (p < end) {
        /* The row's fields: each ends at FIELD_END, the last at ROW_END or the text's end. */
        for (Py_ssize_t i = 0; i < self->fields; i++) {
            const unsigned char *q = p;
            while (q < end && *q < NULL_MARK)
                q++;
            if (q < end && *q == NULL_MARK) { /* NULL: the mark alone */
                q++;
                if (q != p + 1) {
                    PyErr_SetString(PyExc_ValueError, "a NULL mark inside a field");
                    goto fail;
                }
            }
            int last = i == self->fields - 1;
            int closed = last ? (q == end || *q == ROW_END) : (q < end && *q == FIELD_END);
            if (!closed) {
                PyErr_SetString(PyExc_ValueError, "a row without the plan's fields");
                goto fail;
            }
            starts[i] = p;
            lengths[i] = q - p;
            p = q + (q < end);
        }
        Py_ssize_t used = 0;
        for (Py_ssize_t i = 0; i < self->fields; i++) {
            if (reserve(self, used, self->label_lengths[i]) < 0)
                goto fail;
            memcpy(self->buffer + used, self->labels[i], (size_t)self->label_lengths[i]);
            used = render(self, used + self->label_lengths[i], self->kinds[i], starts[i],
                          lengths[i]);
            if (used < 0)
                goto fail;
        }
        if (reserve(self, used, 1) < 0)
            goto fail;
        self->buffer[used++] = '}';
        if (append(rows, self->buffer, used) < 0)
            goto fail;
        /* The key: a one-field key's text, or [a,b] (integers' text is their JSON). */
        used = 0;
        int bracketed = self->key_count > 1;
        for (Py_ssize_t k = 0; k < self->key_count; k++) {
            Py_ssize_t field = self->key[k];
            if (lengths[field] == 1 && starts[field][0] == NULL_MARK) {
                PyErr_SetString(PyExc_ValueError, "a NULL key");
                goto fail;
            }
            if (reserve(self, used, lengths[field] + 2) < 0)
                goto fail;
            if (bracketed)
                self->buffer[used++] = k == 0 ? '[' : ',';
            memcpy(self->buffer + used, starts[field], (size_t)lengths[field]);
            used += lengths[field];
        }
        if (bracketed)
            self->buffer[used++] = ']';
        if (append(keys, self->buffer, used) < 0)
            goto fail;
    }
    PyMem_Free(starts);
    PyMem_Free(lengths);
    return Py_BuildValue("NN", keys, rows);
fail:
    PyMem_Free(starts);
    PyMem_Free(lengths);
    Py_XDECREF(keys);
    Py_XDECREF(rows);
    return NULL;
}

static PyMethodDef plan_methods[] = {
    {"split", (PyCFunction)plan_split, METH_O,
     "split(text) -> (keys, rows): each row's key JSON and row JSON."},
    {"__reduce__", (PyCFunction)plan_reduce, METH_NOARGS, "Pickled as its arguments."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PlanType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ferry_runtime.source._rowtext.Plan",
    .tp_basicsize = sizeof(Plan),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Plan(labels, kinds, key): how a row's raw fields become its JSON.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)plan_init,
    .tp_dealloc = (destructor)plan_dealloc,
    .tp_methods = plan_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_rowtext",
    "A snapshot chunk's raw fields, as the server sends them, to JSON rows and keys.", -1, NULL,
};

PyMODINIT_FUNC PyInit__rowtext(void) {
    if (PyType_Ready(&PlanType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&PlanType);
    if (PyModule_AddObject(m, "Plan", (PyObject *)&PlanType) < 0) {
        Py_DECREF(&PlanType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
