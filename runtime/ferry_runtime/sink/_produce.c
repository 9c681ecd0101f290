/* Records into librdkafka in one call per topic: the exactly-once sink's hot path.
 *
 * confluent-kafka's Producer.produce() costs ~0.75 us of the calling thread a record: its
 * argument parsing, a per-message state, librdkafka's lookup of the topic by name and, when
 * the record is acknowledged, the interpreter lock taken back to free that state. This
 * module hands a run of records to librdkafka's rd_kafka_produce_batch() (the library
 * copies keys and values, runs the configured partitioner on each key, and queues them in
 * order) with the lock released and no per-message state: ~0.35 us a record. A message
 * without that state is acknowledged without Python (confluent-kafka's delivery callback
 * returns at once), so this serves only the exactly-once sink, whose failures
 * commit_transaction() reports, never a sink that needs a delivery callback.
 *
 * librdkafka is the one confluent-kafka loaded (found among the process's loaded objects),
 * and the producer's handle is read from confluent-kafka's Producer object, whose C
 * struct starts with it (every 1.x and 2.x release). handle() checks that pointer against
 * librdkafka's own record of its Python object (the opaque the binding sets) before any
 * use; kafka.py produces record by record when this module cannot serve. */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* librdkafka's public ABI (rdkafka.h, unchanged since 0.9): the message struct and the
 * functions used here. */
typedef struct {
    int err;
    void *rkt;
    int32_t partition;
    void *payload;
    size_t len;
    void *key;
    size_t key_len;
    int64_t offset;
    void *_private;
} rk_message;

#define RK_PRODUCER 0
#define RK_PARTITION_UA (-1)
#define RK_MSG_F_COPY 0x2
#define RK_ERR_QUEUE_FULL (-184)

static struct {
    void *(*opaque)(const void *rk);
    int (*type)(const void *rk);
    void *(*topic_new)(void *rk, const char *topic, void *conf);
    void (*topic_destroy)(void *rkt);
    int (*produce_batch)(void *rkt, int32_t partition, int flags, rk_message *msgs, int count);
    int (*fatal_error)(void *rk, char *reason, size_t size);
} rk;

static PyTypeObject *producer_type; /* confluent_kafka.cimpl.Producer */
static const char *unavailable;    /* why this module cannot serve, or NULL */

static int find_librdkafka(struct dl_phdr_info *info, size_t size, void *found) {
    (void)size;
    if (info->dlpi_name && strstr(info->dlpi_name, "librdkafka")) {
        *(const char **)found = info->dlpi_name;
        return 1;
    }
    return 0;
}

static const char *load_librdkafka(void) {
    const char *path = NULL;
    dl_iterate_phdr(find_librdkafka, &path);
    if (path == NULL)
        return "librdkafka is not loaded";
    void *lib = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (lib == NULL)
        return "librdkafka cannot be opened";
    *(void **)&rk.opaque = dlsym(lib, "rd_kafka_opaque");
    *(void **)&rk.type = dlsym(lib, "rd_kafka_type");
    *(void **)&rk.topic_new = dlsym(lib, "rd_kafka_topic_new");
    *(void **)&rk.topic_destroy = dlsym(lib, "rd_kafka_topic_destroy");
    *(void **)&rk.produce_batch = dlsym(lib, "rd_kafka_produce_batch");
    *(void **)&rk.fatal_error = dlsym(lib, "rd_kafka_fatal_error");
    if (!rk.opaque || !rk.type || !rk.topic_new || !rk.topic_destroy || !rk.produce_batch ||
        !rk.fatal_error)
        return "librdkafka lacks a function this module calls";
    return NULL;
}

/* The producer's librdkafka handle, or NULL (a Python error set) when it is not one. */
static void *handle_of(PyObject *producer) {
    if (unavailable) {
        PyErr_SetString(PyExc_RuntimeError, unavailable);
        return NULL;
    }
    if (!PyObject_TypeCheck(producer, producer_type)) {
        PyErr_SetString(PyExc_TypeError, "not a confluent_kafka.Producer");
        return NULL;
    }
    void *handle = *(void **)((char *)producer + sizeof(PyObject));
    if (handle == NULL || rk.opaque(handle) != (void *)producer || rk.type(handle) != RK_PRODUCER) {
        PyErr_SetString(PyExc_RuntimeError, "the producer's librdkafka handle is not where "
                                            "this module looks for it (or it is closed)");
        return NULL;
    }
    return handle;
}

static PyObject *handle(PyObject *self, PyObject *producer) {
    (void)self;
    if (handle_of(producer) == NULL)
        return NULL;
    Py_RETURN_NONE;
}

static int bytes_or_none(PyObject *value, void **data, size_t *len) {
    if (value == Py_None) {
        *data = NULL;
        *len = 0;
        return 0;
    }
    if (!PyBytes_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "a record's key and value are bytes or None");
        return -1;
    }
    *data = PyBytes_AS_STRING(value);
    *len = (size_t)PyBytes_GET_SIZE(value);
    return 0;
}

/* One run: records[start:end] all to `topic`. Returns how many librdkafka queued (a prefix:
 * once a message is refused, librdkafka refuses the rest of the call) and sets *err to the
 * first refusal's code (0: none). */
static Py_ssize_t produce_run(void *handle, PyObject *records, Py_ssize_t start, Py_ssize_t end,
                              PyObject *topic, int *err) {
    Py_ssize_t count = end - start;
    rk_message *msgs = calloc((size_t)count, sizeof(rk_message));
    if (msgs == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *record = PyList_GET_ITEM(records, start + i);
        if (bytes_or_none(PyTuple_GET_ITEM(record, 1), &msgs[i].key, &msgs[i].key_len) < 0 ||
            bytes_or_none(PyTuple_GET_ITEM(record, 2), &msgs[i].payload, &msgs[i].len) < 0) {
            free(msgs);
            return -1;
        }
        msgs[i].partition = RK_PARTITION_UA;
    }
    const char *name = PyUnicode_AsUTF8(topic);
    if (name == NULL) {
        free(msgs);
        return -1;
    }
    int queued = 0;
    int count_int = (int)count;
    void *rkt;
    /* The keys and values stay alive: `records` holds them, and the caller's thread is the
     * only one that uses its list. */
    Py_BEGIN_ALLOW_THREADS
    rkt = rk.topic_new(handle, name, NULL);
    if (rkt != NULL) {
        queued = rk.produce_batch(rkt, RK_PARTITION_UA, RK_MSG_F_COPY, msgs, count_int);
        rk.topic_destroy(rkt);
    }
    Py_END_ALLOW_THREADS
    *err = 0;
    if (rkt == NULL) {
        free(msgs);
        PyErr_Format(PyExc_ValueError, "librdkafka refused the topic name %R", topic);
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (msgs[i].err != 0) {
            *err = msgs[i].err;
            break;
        }
    }
    free(msgs);
    return queued;
}

static PyObject *produce(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *producer, *records;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "OO!n", &producer, &PyList_Type, &records, &start))
        return NULL;
    void *handle = handle_of(producer);
    if (handle == NULL)
        return NULL;
    Py_ssize_t size = PyList_GET_SIZE(records);
    int err = 0;
    while (start < size && err == 0) {
        /* A run: records to one topic, none of them partitioned by a column. */
        PyObject *topic = NULL;
        Py_ssize_t end = start;
        for (; end < size; end++) {
            PyObject *record = PyList_GET_ITEM(records, end);
            if (!PyTuple_Check(record) || PyTuple_GET_SIZE(record) < 4) {
                PyErr_SetString(PyExc_TypeError, "records are Record tuples");
                return NULL;
            }
            PyObject *this_topic = PyTuple_GET_ITEM(record, 0);
            if (PyTuple_GET_ITEM(record, 3) != Py_None || !PyUnicode_Check(this_topic))
                break;
            if (topic == NULL)
                topic = this_topic;
            else if (this_topic != topic && PyUnicode_Compare(this_topic, topic) != 0)
                break;
        }
        if (end == start) /* a partitioned record: the caller's */
            break;
        Py_ssize_t queued = produce_run(handle, records, start, end, topic, &err);
        if (queued < 0)
            return NULL;
        start += queued;
    }
    return Py_BuildValue("ni", start, err);
}

/* fatal_error(producer) -> (code, reason) | None: the fatal error librdkafka raised, which
 * it then refuses every record for with the code _FATAL (-150), saying no more. */
static PyObject *fatal_error(PyObject *self, PyObject *producer) {
    (void)self;
    void *handle = handle_of(producer);
    if (handle == NULL)
        return NULL;
    char reason[512];
    int code = rk.fatal_error(handle, reason, sizeof(reason));
    if (code == 0)
        Py_RETURN_NONE;
    return Py_BuildValue("is", code, reason);
}

static PyMethodDef methods[] = {
    {"handle", handle, METH_O,
     "handle(producer) -> None: raises unless produce() can serve this producer."},
    {"produce", produce, METH_VARARGS,
     "produce(producer, records, start) -> (next, err): queue records[start:] (Record "
     "tuples) in librdkafka until the end, a record with a partition_by, or a refusal. "
     "next: the first record not queued; err: librdkafka's error code for it (0: none; "
     "-184: the local queue is full, poll and call again)."},
    {"fatal_error", fatal_error, METH_O,
     "fatal_error(producer) -> (code, reason) | None: librdkafka's fatal error, if any."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_produce",
    "Records into librdkafka in one call per topic (the exactly-once sink's hot path).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__produce(void) {
    PyObject *cimpl = PyImport_ImportModule("confluent_kafka.cimpl"); /* loads librdkafka */
    if (cimpl == NULL)
        return NULL;
    producer_type = (PyTypeObject *)PyObject_GetAttrString(cimpl, "Producer");
    Py_DECREF(cimpl);
    if (producer_type == NULL)
        return NULL;
    if (!PyType_Check(producer_type) ||
        producer_type->tp_basicsize < (Py_ssize_t)(sizeof(PyObject) + sizeof(void *)))
        unavailable = "confluent_kafka.cimpl.Producer is not the C type this module knows";
    else
        unavailable = load_librdkafka();
    return PyModule_Create(&module);
}
