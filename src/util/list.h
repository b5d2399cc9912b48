/* list.h - intrusive circular doubly-linked list (as libuv queue.h and
 * h2o linklist.h). A node is embedded in its owner; the list never allocates.
 * An unlinked node points at itself, so list_remove() is safe to repeat. */
#ifndef LIST_H
#define LIST_H
#include <stddef.h>

struct list {
    struct list *prev, *next;
};

static inline void list_init(struct list *l) { l->prev = l->next = l; }
static inline int list_empty(const struct list *l) { return l->next == l; }
static inline int list_linked(const struct list *n) { return n->next != n; }

static inline void list_insert_tail(struct list *head, struct list *n)
{
    n->next = head;
    n->prev = head->prev;
    head->prev->next = n;
    head->prev = n;
}

static inline void list_remove(struct list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

#define list_entry(node, type, member) \
    ((type *)((char *)(node) - offsetof(type, member)))

#define list_each(pos, head) \
    for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

/* Safe against removal of the current node. */
#define list_each_safe(pos, tmp, head) \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
         (pos) = (tmp), (tmp) = (pos)->next)
#endif
