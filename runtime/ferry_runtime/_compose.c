/* compose(pieces, columns) -> list[bytes]: each row's record assembled in one allocation.
 *
 * formats.encode_reads writes many records of one shape: constant bytes the records share
 * (a Maxwell head, a Debezium envelope) around each row's own bytes (its key's JSON, its
 * row's JSON). In Python, `head + key + middle + row + tail` makes four objects and copies
 * the growing prefix four times, a row; here each record is one allocation and one copy.
 * `pieces` is a tuple of bytes (copied as they are) and ints (an index into `columns`, a
 * tuple of equally long lists of bytes: that row's item). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *compose(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *pieces, *columns;
    if (!PyArg_ParseTuple(args, "O!O!", &PyTuple_Type, &pieces, &PyTuple_Type, &columns))
        return NULL;
    Py_ssize_t piece_count = PyTuple_GET_SIZE(pieces), column_count = PyTuple_GET_SIZE(columns);
    Py_ssize_t rows = 0;
    for (Py_ssize_t c = 0; c < column_count; c++) {
        PyObject *column = PyTuple_GET_ITEM(columns, c);
        if (!PyList_Check(column) || (c > 0 && PyList_GET_SIZE(column) != rows)) {
            PyErr_SetString(PyExc_ValueError, "columns are lists of one length");
            return NULL;
        }
        rows = PyList_GET_SIZE(column);
    }
    /* Each piece once: its column (a list), or NULL for constant bytes. */
    PyObject **sources = PyMem_Calloc((size_t)piece_count + 1, sizeof(PyObject *));
    if (sources == NULL)
        return PyErr_NoMemory();
    Py_ssize_t fixed = 0;
    for (Py_ssize_t p = 0; p < piece_count; p++) {
        PyObject *piece = PyTuple_GET_ITEM(pieces, p);
        if (PyBytes_Check(piece)) {
            fixed += PyBytes_GET_SIZE(piece);
            continue;
        }
        Py_ssize_t index = PyLong_Check(piece) ? PyLong_AsSsize_t(piece) : -1;
        if (index < 0 || index >= column_count) {
            PyErr_Clear(); /* an index past Py_ssize_t: the same refusal */
            PyErr_SetString(PyExc_ValueError, "a piece is bytes or a column's index");
            PyMem_Free(sources);
            return NULL;
        }
        sources[p] = PyTuple_GET_ITEM(columns, index);
    }
    PyObject *out = PyList_New(rows);
    for (Py_ssize_t r = 0; out != NULL && r < rows; r++) {
        Py_ssize_t size = fixed;
        for (Py_ssize_t p = 0; p < piece_count; p++) {
            PyObject *item = sources[p] ? PyList_GET_ITEM(sources[p], r) : NULL;
            if (item != NULL && !PyBytes_Check(item)) {
                PyErr_SetString(PyExc_TypeError, "a column's items are bytes");
                Py_CLEAR(out);
                break;
            }
            size += item ? PyBytes_GET_SIZE(item) : 0;
        }
        PyObject *record = out ? PyBytes_FromStringAndSize(NULL, size) : NULL;
        if (record == NULL) {
            Py_CLEAR(out);
            break;
        }
        char *at = PyBytes_AS_STRING(record);
        for (Py_ssize_t p = 0; p < piece_count; p++) {
            PyObject *part = sources[p] ? PyList_GET_ITEM(sources[p], r)
                                        : PyTuple_GET_ITEM(pieces, p);
            memcpy(at, PyBytes_AS_STRING(part), (size_t)PyBytes_GET_SIZE(part));
            at += PyBytes_GET_SIZE(part);
        }
        PyList_SET_ITEM(out, r, record);
    }
    PyMem_Free(sources);
    return out;
}

static PyMethodDef methods[] = {
    {"compose", compose, METH_VARARGS,
     "compose(pieces, columns) -> list[bytes]: for each row, the pieces joined, an int piece "
     "standing for that row's item of columns[int]."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_compose",
    "Records of one shape assembled in one allocation each (formats.encode_reads).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__compose(void) { return PyModule_Create(&module); }
