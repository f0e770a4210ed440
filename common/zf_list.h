/*  zf_list: an intrusive doubly-linked list (redis adlist.c, Linux list.h).

    The links live in the items themselves, so moving an item between lists
    costs no allocation, and an item can be on several lists at once with a
    link for each. ZF_CONTAINER turns a link back into its item:

        struct delivery { zf_link_t ready; zf_link_t held; ... };
        zf_list_push (&group->ready, &d->ready);
        struct delivery *first = ZF_CONTAINER (group->ready.head, struct delivery, ready);

    The functions are inline: the broker moves every item it handles through
    a few lists, and a call each would show in its profile.
*/
#ifndef ZF_LIST_H_INCLUDED
#define ZF_LIST_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_link_t {
    struct _zf_link_t *prev; // the one before, or NULL at the head
    struct _zf_link_t *next; // the one after, or NULL at the tail
} zf_link_t;

typedef struct {
    zf_link_t *head; // first, or NULL
    zf_link_t *tail; // last, or NULL
    size_t size;     // links on the list
} zf_list_t;

//  The item of type whose member `member` is the link at ptr (not NULL).
#define ZF_CONTAINER(ptr, type, member) ((type *) ((char *) (ptr) -offsetof (type, member)))

//  The same, or NULL when ptr is NULL (a list's head or a link's next).
#define ZF_CONTAINER_OR_NULL(ptr, type, member) ((ptr) ? ZF_CONTAINER (ptr, type, member) : NULL)

//  Appends link, which must be on no list.
static inline void
zf_list_push (zf_list_t *list, zf_link_t *link)
{
    link->prev = list->tail;
    link->next = NULL;
    if (list->tail)
        list->tail->next = link;
    else
        list->head = link;
    list->tail = link;
    list->size++;
}

//  Puts link first; it must be on no list.
static inline void
zf_list_push_front (zf_list_t *list, zf_link_t *link)
{
    link->prev = NULL;
    link->next = list->head;
    if (list->head)
        list->head->prev = link;
    else
        list->tail = link;
    list->head = link;
    list->size++;
}

//  Takes link, which must be on list, off it.
static inline void
zf_list_remove (zf_list_t *list, zf_link_t *link)
{
    if (link->prev)
        link->prev->next = link->next;
    else
        list->head = link->next;
    if (link->next)
        link->next->prev = link->prev;
    else
        list->tail = link->prev;
    link->prev = link->next = NULL;
    list->size--;
}

#ifdef __cplusplus
}
#endif
#endif
