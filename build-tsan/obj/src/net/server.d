build-tsan/obj/src/net/server.o: src/net/server.c src/auth/auth.h \
 src/net/rate.h src/net/server.h src/config.h src/util/buf.h \
 src/util/list.h src/presence/presence.h src/store/store.h src/util/log.h \
 src/util/xalloc.h src/ws/frame.h
src/auth/auth.h:
src/net/rate.h:
src/net/server.h:
src/config.h:
src/util/buf.h:
src/util/list.h:
src/presence/presence.h:
src/store/store.h:
src/util/log.h:
src/util/xalloc.h:
src/ws/frame.h:
