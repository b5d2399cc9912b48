build-tsan/obj/src/presence/presence.o: src/presence/presence.c \
 src/presence/presence.h src/util/list.h src/util/xalloc.h
src/presence/presence.h:
src/util/list.h:
src/util/xalloc.h:
