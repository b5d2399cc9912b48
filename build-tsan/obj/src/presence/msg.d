build-tsan/obj/src/presence/msg.o: src/presence/msg.c src/presence/msg.h \
 src/presence/presence.h src/util/buf.h src/util/xalloc.h
src/presence/msg.h:
src/presence/presence.h:
src/util/buf.h:
src/util/xalloc.h:
