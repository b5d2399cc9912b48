build-tsan/obj/src/ws/ws.o: src/ws/ws.c src/net/server.h src/config.h \
 src/util/buf.h src/util/list.h src/util/log.h src/util/xalloc.h \
 src/ws/frame.h
src/net/server.h:
src/config.h:
src/util/buf.h:
src/util/list.h:
src/util/log.h:
src/util/xalloc.h:
src/ws/frame.h:
