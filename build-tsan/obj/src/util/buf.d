build-tsan/obj/src/util/buf.o: src/util/buf.c src/util/buf.h \
 src/util/xalloc.h
src/util/buf.h:
src/util/xalloc.h:
